from flask import render_template, request, url_for

from ...extensions import db
from .. import bp
from ..services import finance as service
from ..services.parsing import parse_note, parse_reason
from ._common import PER_PAGE, actor, done, page_number


@bp.get("/withdrawals")
def withdrawals():
    status, query = service.withdrawal_query(request.args.get("status", ""))
    pagination = db.paginate(query, page=page_number(), per_page=PER_PAGE, error_out=False)
    return render_template("admin/withdrawals.html", pagination=pagination, rows=service.withdrawal_rows(pagination.items),
                           status=status, statuses=service.WITHDRAWAL_STATUSES)


@bp.post("/withdrawals/<int:withdrawal_id>/approve")
def withdrawal_approve(withdrawal_id: int):
    withdrawal = service.approve_withdrawal(actor(), withdrawal_id, parse_note(request.form.get("note")))
    message = (f"Withdrawal #{withdrawal.id} approved; the payout job is running." if withdrawal.next_attempt_at
               else f"Withdrawal #{withdrawal.id} approved; it is paid with the next payout batch.")
    return done(message, url_for("admin.withdrawals"))


@bp.post("/withdrawals/<int:withdrawal_id>/reject")
def withdrawal_reject(withdrawal_id: int):
    withdrawal = service.reject_withdrawal(actor(), withdrawal_id, parse_reason(request.form.get("reason")))
    return done(f"Withdrawal #{withdrawal.id} rejected; the credits are back in the user's wallet.",
                url_for("admin.withdrawals"))


@bp.post("/withdrawals/<int:withdrawal_id>/retry")
def withdrawal_retry(withdrawal_id: int):
    withdrawal = service.retry_payout(actor(), withdrawal_id)
    return done(f"Withdrawal #{withdrawal.id}: the payout is being tried again.", url_for("admin.withdrawals", status="approved"))


@bp.post("/withdrawals/<int:withdrawal_id>/fail")
def withdrawal_fail(withdrawal_id: int):
    withdrawal = service.fail_and_reverse(actor(), withdrawal_id, parse_reason(request.form.get("reason"), max_len=255))
    return done(f"Withdrawal #{withdrawal.id} failed and reversed; the credits are back in the user's wallet.",
                url_for("admin.withdrawals", status="approved"))
