"""Competitions: traders pay an entry fee in credits into a prize pool, trade the same
virtual starting capital, and the pool (minus the platform fee) is paid to the best ranks.

The domain core: models, terms, the service (entry, leaving, rebuys, cancellation,
disqualification), the lifecycle clock and the prize split. Pages come on top of
``service`` and ``lifecycle``; nothing here is in the navigation."""

from flask import Flask


def init_app(app: Flask) -> None:
    from . import models  # noqa: F401 - the tables
    from .lifecycle import competition_clock
    from .verify import check_prize_pools

    app.extensions["background_services"].append(competition_clock)
    app.extensions.setdefault("ledger_checks", []).append(check_prize_pools)
