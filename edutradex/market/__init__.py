"""Markets: the catalogue, the simulator and feed adapters, the one price authority (feed
loop), the tick store, candles, quotes, live ticks over Socket.IO, and the market pages."""

from flask import Blueprint

bp = Blueprint("market", __name__)


def init_app(app):
    from . import models  # noqa: F401

    app.register_blueprint(bp)
