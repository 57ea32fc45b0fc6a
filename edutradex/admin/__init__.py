"""The admin panel: one blueprint, every route behind the admin check."""

from flask import Blueprint

from ..auth.decorators import admin_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
@admin_required
def require_admin():
    """Every admin route, present and future, is admin-only."""


def init_app(app):
    from . import views  # noqa: F401

    app.register_blueprint(bp)
