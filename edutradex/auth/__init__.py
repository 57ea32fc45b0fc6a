"""Accounts: register, login, logout, profile, demo-balance reset, roles."""

from flask import Blueprint

from ..extensions import login_manager

bp = Blueprint("auth", __name__)


def init_app(app):
    from . import cli, models, views  # noqa: F401 - registers routes and the user loader

    app.register_blueprint(bp)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to continue."
    login_manager.login_message_category = "info"
    cli.init_app(app)
