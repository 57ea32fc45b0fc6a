from flask import current_app, render_template
from flask_login import current_user

from . import bp
from .health import may_see_details, run_health_checks


@bp.route("/")
def index():
    if current_user.is_authenticated:
        return render_template("core/dashboard.html")
    return render_template("core/landing.html", real_forex=_real_forex())


def _real_forex() -> bool:
    """Whether FOREX markets get real prices here (a data provider is configured)."""
    if "market.index" not in current_app.view_functions:
        return False
    from ..market.service import feed_configured

    return feed_configured()


@bp.route("/healthz")
def healthz():
    healthy, report = run_health_checks()
    code = 200 if healthy else 503
    body = {"status": "ok" if healthy else "unhealthy", "code": code}
    if may_see_details():
        body["checks"] = report
    return body, code, {"Cache-Control": "no-store"}
