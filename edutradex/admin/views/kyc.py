from flask import render_template, request, url_for

from ...extensions import db
from .. import bp
from ..services import finance as service
from ..services.parsing import parse_note, parse_reason
from ._common import PER_PAGE, actor, done, page_number


@bp.get("/kyc")
def kyc_queue():
    status, query = service.kyc_query(request.args.get("status", ""))
    pagination = db.paginate(query, page=page_number(), per_page=PER_PAGE, error_out=False)
    return render_template("admin/kyc.html", pagination=pagination, rows=service.kyc_rows(pagination.items), status=status,
                           statuses=service.KYC_STATUSES)


@bp.post("/kyc/<int:submission_id>/approve")
def kyc_approve(submission_id: int):
    service.approve_kyc(actor(), submission_id, parse_note(request.form.get("note")))
    return done("KYC approved; the user has been emailed.", url_for("admin.kyc_queue"))


@bp.post("/kyc/<int:submission_id>/reject")
def kyc_reject(submission_id: int):
    service.reject_kyc(actor(), submission_id, parse_reason(request.form.get("reason")))
    return done("KYC rejected; the user has been emailed the reason.", url_for("admin.kyc_queue"))
