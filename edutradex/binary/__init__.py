"""Rise/fall demo trading: place a trade against the authority's quote, settle it at the
tick recorded at its expiry (exactly once, set-based), history and stats."""

from flask import Blueprint

bp = Blueprint("binary", __name__)

DEMO_RESET_NOTE = (
    "Open rise/fall trades are cancelled by a reset and their stakes are not returned separately: "
    "your balance becomes exactly the default amount."
)


def init_app(app):
    from . import formatting, models, views  # noqa: F401 - registers the model, filters and routes
    from .service import cancel_open_trades_on_reset
    from .settlement import nudge_after_flush, settlement_clock

    app.register_blueprint(bp)
    app.extensions["background_services"].append(settlement_clock)
    app.extensions.setdefault("tick_listeners", []).append(nudge_after_flush)
    app.extensions.setdefault("on_demo_reset", []).append(cancel_open_trades_on_reset)
    app.config["DEMO_RESET_NOTE"] = DEMO_RESET_NOTE
