from flask import current_app, render_template
from flask_login import current_user

from . import bp
from .health import run_health_checks


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
    return {"status": "ok" if healthy else "unhealthy", "checks": report}, 200 if healthy else 503
