"""Template filters for trades: prices at the market's precision, tick times, durations."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from ..market.service import market_name, market_snapshot
from . import bp


@bp.app_template_filter("price")
def format_price(value: Decimal | None, precision: int | None = None) -> str:
    """At the market's precision, unless that would hide a recorded digit (a half-pip mid)."""
    if value is None:
        return "—"
    if precision is not None:
        shown = value.quantize(Decimal(1).scaleb(-precision))
        if shown == value:
            return f"{shown:f}"
    return f"{value.normalize():f}"


@bp.app_template_filter("ms_time")
def format_ms_time(ms: int | None) -> str:
    if ms is None:
        return "—"
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{ms % 1000:03d} UTC"


@bp.app_template_filter("duration")
def format_duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


@bp.app_template_global()
def precision_of(symbol: str) -> int | None:
    """The market's quoted decimal places."""
    market = market_snapshot(symbol)
    return market.precision if market is not None else None


bp.add_app_template_global(market_name, "market_name")
