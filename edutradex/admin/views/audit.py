from flask import render_template, request

from ...extensions import db
from ...parsing import parse_iso_date
from .. import bp
from ..services import audit as service
from ._common import PER_PAGE, page_number


@bp.get("/audit")
def audit_log():
    args = request.args
    filters = service.AuditFilters(
        actor=args.get("actor", "").strip()[:100],
        action=args.get("action", "").strip()[:64],
        target_type=args.get("target_type", "").strip()[:32],
        target_id=args.get("target_id", "").strip()[:64],
        since=parse_iso_date(args.get("since"), "From"),
        until=parse_iso_date(args.get("until"), "To"),
    )
    pagination = db.paginate(service.audit_query(filters), page=page_number(), per_page=PER_PAGE, error_out=False)
    return render_template("admin/audit.html", pagination=pagination, filters=filters,
                           actions=service.known_actions(), target_types=service.known_target_types(),
                           changes_of=service.audit_changes)
