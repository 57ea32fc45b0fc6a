"""What every admin view needs: the acting admin, pagination, the answer to a POST."""

from __future__ import annotations

from flask import current_app, flash, redirect, request
from flask_login import current_user

from ...parsing import parse_page
from .. import bp
from ..services.audit import Actor

PER_PAGE = 25

# (label, endpoint, the endpoint prefix that marks the section as current)
SECTIONS = (
    ("Overview", "admin.index", "admin.index"),
    ("Users", "admin.users", "admin.user"),
    ("Markets", "admin.markets", "admin.market"),
    ("KYC", "admin.kyc_queue", "admin.kyc"),
    ("Withdrawals", "admin.withdrawals", "admin.withdrawal"),
    ("Payouts", "admin.payout_batches", "admin.payout"),
    ("Competitions", "admin.competitions", "admin.competition"),
    ("Jobs", "admin.jobs", "admin.job"),
    ("Settings", "admin.settings", "admin.setting"),
    ("Audit log", "admin.audit_log", "admin.audit"),
)


@bp.context_processor
def admin_navigation():
    return {"admin_sections": [s for s in SECTIONS if s[1] in current_app.view_functions]}


def actor() -> Actor:
    return Actor(user_id=current_user.id, ip=request.remote_addr)


def page_number() -> int:
    return parse_page(request.args.get("page"))


def done(message: str, url: str, category: str = "success"):
    """After a successful action: a toast on the next page. HTMX forms follow the
    redirect as a full page load; plain forms get an ordinary redirect."""
    flash(message, category)
    if request.headers.get("HX-Request"):
        return "", 204, {"HX-Redirect": url}
    return redirect(url)
