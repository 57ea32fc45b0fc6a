"""Dashboard, health check, error pages and the Socket.IO connection."""

from flask import Blueprint

bp = Blueprint("core", __name__)


def init_app(app):
    from . import errors, events, views  # noqa: F401 - registers routes and handlers

    app.register_blueprint(bp)
    errors.init_app(app)
