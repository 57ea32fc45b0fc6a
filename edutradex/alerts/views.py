"""/alerts (set, list, delete), /notifications (read, mark read) and the small alert form of
the trade page. Thin: parse, call the service, render."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from flask_login import current_user, login_required

from ..errors import DomainError
from ..market.service import list_markets
from ..parsing import parse_page
from . import bp, service


def is_htmx() -> bool:
    return bool(request.headers.get("HX-Request"))


def unread_for_nav() -> int:
    """The bell's count (base.html), for a signed-in user."""
    return service.unread_count(current_user.id) if current_user.is_authenticated else 0


def _page(status: int = 200, error: DomainError | None = None, form: dict | None = None):
    return render_template("alerts/index.html", alerts=service.list_alerts(current_user.id),
                           markets=list_markets(active_only=True), error=error, form=form or {},
                           expires_label=service.expires_label), status


@bp.route("/alerts")
@login_required
def index():
    return _page()


@bp.route("/alerts", methods=["POST"])
@login_required
def create():
    form = request.form
    try:
        alert = service.create_alert(current_user.id, form.get("symbol", ""), form.get("kind", ""),
                                     form.get("level", ""), repeat=form.get("repeat") == "1",
                                     expires=form.get("expires", ""))
    except DomainError as exc:
        if is_htmx():
            return (render_template("alerts/_form_error.html", error=exc), exc.status_code,
                    {"HX-Retarget": "#alert-form-refusal", "HX-Reswap": "innerHTML"})
        return _page(exc.status_code, exc, dict(form))
    if is_htmx():
        return render_template("alerts/_created.html", alert=alert)
    return redirect(url_for("alerts.index"))


@bp.route("/alerts/<int:alert_id>/delete", methods=["POST"])
@login_required
def delete(alert_id: int):
    service.delete_alert(current_user.id, alert_id)
    if is_htmx():
        return ""
    return redirect(url_for("alerts.index"))


@bp.route("/notifications")
@login_required
def notifications():
    return render_template("alerts/notifications.html",
                           fires=service.notifications(current_user.id, parse_page(request.args.get("page"))),
                           unread=service.unread_count(current_user.id))


@bp.route("/notifications/read", methods=["POST"])
@login_required
def mark_all_read():
    service.mark_read(current_user.id)
    return redirect(_back_to_the_page())


@bp.route("/notifications/<int:fire_id>/read", methods=["POST"])
@login_required
def mark_read(fire_id: int):
    service.mark_read(current_user.id, fire_id)
    return redirect(_back_to_the_page())


def _back_to_the_page() -> str:
    """Back to the notifications page the form was on (its ?page=)."""
    page = parse_page(request.args.get("page"))
    return url_for("alerts.notifications", page=page) if page > 1 else url_for("alerts.notifications")
