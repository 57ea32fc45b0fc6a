"""The admin panel: one blueprint, every route behind the admin check; its sections
(users, markets, KYC, withdrawals, statistics, settings, jobs, audit log) are submodules
of views/, their logic in services/."""

from flask import Blueprint

from ..auth.decorators import admin_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
@admin_required
def require_admin():
    """Every admin route, present and future, is admin-only."""


def init_app(app):
    from . import models, views  # noqa: F401

    app.register_blueprint(bp)
