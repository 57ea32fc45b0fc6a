"""The watchlist: a user's own list of markets on the dashboard, with live bid/ask over one
Socket.IO subscription for the whole list, and a sparkline of the last hour."""

from flask import Blueprint

bp = Blueprint("watchlist", __name__)


def init_app(app):
    from . import models, signal, views  # noqa: F401 - the model, the commit hook, the routes
    from .rooms import WatchlistRooms
    from .service import MAX_ENTRIES, addable_markets, watch_rows

    app.register_blueprint(bp)
    app.extensions.setdefault("frame_listeners", []).append(WatchlistRooms())
    app.add_template_global(watch_rows, "watchlist_rows")
    app.add_template_global(addable_markets, "watchlist_addable")
    app.add_template_global(MAX_ENTRIES, "watchlist_max")
