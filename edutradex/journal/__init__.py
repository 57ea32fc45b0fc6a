"""The trader's journal: for the demo account and each competition account, the equity
curve and the figures of the closed trades, a note and tags on any trade, a CSV export."""

from flask import Blueprint

bp = Blueprint("journal", __name__)


def init_app(app):
    from . import models, views  # noqa: F401 - registers the model and the routes

    app.register_blueprint(bp)
