from flask import render_template
from flask_login import current_user

from . import bp
from .health import run_health_checks


@bp.route("/")
def index():
    if current_user.is_authenticated:
        return render_template("core/dashboard.html")
    return render_template("core/landing.html")


@bp.route("/healthz")
def healthz():
    healthy, report = run_health_checks()
    return {"status": "ok" if healthy else "unhealthy", "checks": report}, 200 if healthy else 503
