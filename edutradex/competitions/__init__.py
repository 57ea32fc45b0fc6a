"""Competitions: traders pay an entry fee in credits into a prize pool, trade the same
virtual starting capital, and the pool (minus the platform fee) is paid to the best ranks.

The domain core (models, terms, the service: entry, leaving, rebuys, cancellation,
disqualification; the lifecycle clock and the prize split) and, on top of ``service``,
the trader pages (views.py) and the admin section (admin/views/competitions.py)."""

from flask import Blueprint, Flask

bp = Blueprint("competitions", __name__, url_prefix="/competitions")


def init_app(app: Flask) -> None:
    from .. import devices
    from . import board_views, engine, fair_play_models, models, rise_fall_views, rules, terminal, views  # noqa: F401 - tables, pages, terminals
    from .lifecycle import competition_clock
    from .rise_fall import refuse_rebuy_while_trades_open, settle_trades_at_end
    from .samples import seed_sample_competitions
    from .verify import check_prize_pools

    app.extensions["background_services"].append(competition_clock)
    devices.init_app(app)  # the device-id cookie fair play records with each participant
    app.add_template_global(rules.nearest_floor, "rule_floor")  # the account bar's distance to breach
    engine.init_app(app)  # the CFD engine: a tick listener of the price feed, the end / rebuy closers
    # RISE_FALL competitions: the end settles every trade at its expiry tick; rebuys wait for open trades
    app.extensions.setdefault("competition_closers", []).append(settle_trades_at_end)
    app.extensions.setdefault("competition_rebuy_closers", []).append(refuse_rebuy_while_trades_open)
    # The leaderboards are re-ranked once a second by the engine's housekeeping (engine.py).
    app.extensions.setdefault("ledger_checks", []).append(check_prize_pools)
    app.extensions.setdefault("laptop_seeders", []).append(seed_sample_competitions)  # `flask seed` only
    if app.config["COMPETITIONS_OPEN"]:  # no trader page (nor link to one) until they open
        app.register_blueprint(bp)
