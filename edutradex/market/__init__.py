"""Markets: the catalogue, the simulator and feed adapters, the one price authority (feed
loop), the tick store, candles, quotes, live ticks over Socket.IO, and the market pages."""

from flask import Blueprint

bp = Blueprint("market", __name__)


def init_app(app):
    from . import cli, config_signal, models, views  # noqa: F401 - models, routes, commit hook
    from .backfill import backfill_history
    from .clock import clock_health
    from .feed import feed_health, run_feed_service
    from .service import seed_markets

    app.register_blueprint(bp)
    app.extensions.setdefault("seeders", []).extend((seed_markets, backfill_history))
    app.extensions["health_checks"]["feed"] = feed_health
    app.extensions["health_checks"]["clock"] = clock_health
    app.extensions["background_services"].append(run_feed_service)
    cli.init_app(app)
