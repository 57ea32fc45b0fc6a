from flask import Response, render_template, request, url_for

from ...errors import DomainError
from ...extensions import db
from ...wallet import batches
from .. import bp
from ..services import finance as service
from ..services.parsing import parse_reason
from ._common import PER_PAGE, actor, done, page_number


@bp.get("/payouts")
def payout_batches():
    pagination = db.paginate(batches.batches_query(), page=page_number(), per_page=PER_PAGE, error_out=False)
    waiting, waiting_total = batches.awaiting_summary()
    try:
        debtor, debtor_error = batches.debtor_account(), None
    except DomainError as exc:
        debtor, debtor_error = None, exc.message
    return render_template("admin/payouts.html", pagination=pagination, waiting=waiting, waiting_total=waiting_total,
                           debtor=debtor, debtor_error=debtor_error)


@bp.post("/payouts")
def payout_batch_create():
    batch = service.create_batch(actor())
    return done(f"Payout batch #{batch.id} created: {batch.line_count} transfer(s), {batch.total:.2f} EUR. "
                "Download its file and upload it to the bank.", url_for("admin.payout_batch", batch_id=batch.id))


@bp.get("/payouts/<int:batch_id>")
def payout_batch(batch_id: int):
    batch = batches.get_batch(batch_id)
    return render_template("admin/payout_batch.html", batch=batch, rows=service.batch_line_rows(batch))


@bp.post("/payouts/<int:batch_id>/download")
def payout_batch_download(batch_id: int):
    filename, xml = service.download_batch(actor(), batch_id)
    return Response(xml, mimetype="application/xml",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})


@bp.post("/payouts/<int:batch_id>/sent")
def payout_batch_sent(batch_id: int):
    batch = service.mark_batch_sent(actor(), batch_id, request.form.get("bank_reference", ""))
    return done(f"Payout batch #{batch.id} marked sent: its withdrawals are paid and the users emailed.",
                url_for("admin.payout_batch", batch_id=batch.id))


@bp.post("/payouts/<int:batch_id>/fail")
def payout_batch_fail(batch_id: int):
    batch = service.fail_batch(actor(), batch_id, parse_reason(request.form.get("reason"), max_len=255))
    return done(f"Payout batch #{batch.id} marked failed: the credits are back in the users' wallets.",
                url_for("admin.payout_batch", batch_id=batch.id))


@bp.post("/payouts/<int:batch_id>/lines/<int:line_id>/fail")
def payout_batch_line_fail(batch_id: int, line_id: int):
    line = service.fail_batch_line(actor(), batch_id, line_id, parse_reason(request.form.get("reason"), max_len=255))
    return done(f"Transfer for withdrawal #{line.withdrawal_id} marked failed: the credits are back in the user's wallet.",
                url_for("admin.payout_batch", batch_id=batch_id))
