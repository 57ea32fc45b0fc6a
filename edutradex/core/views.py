from flask import current_app, render_template
from flask_login import current_user

from .. import metrics as platform_metrics
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


@bp.route("/metrics")
def metrics():
    """Prometheus metrics, for whoever may see /healthz's details: an admin, or a scraper
    sending HEALTHZ_TOKEN (X-Healthz-Token, or Authorization: Bearer)."""
    if not may_see_details():
        code = 403 if _signed_in() else 401
        return ({"error": "Metrics need an admin's session or the HEALTHZ_TOKEN."}, code,
                {"WWW-Authenticate": 'Bearer realm="metrics"', "Cache-Control": "no-store"})
    return platform_metrics.exposition(), 200, {"Content-Type": platform_metrics.CONTENT_TYPE,
                                                 "Cache-Control": "no-store"}


def _signed_in() -> bool:
    try:  # the database may be what is down
        return bool(current_user.is_authenticated)
    except Exception:  # noqa: BLE001
        return False
