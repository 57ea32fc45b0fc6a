"""Recent history for the simulated markets, made at seed time so that a new install's
charts open on a day of prices instead of 1-3 candles against the right edge.

The history is the simulator's own walk, recorded as ticks through the tick store (ids
reserved like the feed's, one batched INSERT) and aggregated into candles like the feed's,
so the path on the chart is the authority's record. Steps are coarse for most of the day
(BACKFILL_STEP_SECONDS) and as fine as the live feed for the last BACKFILL_FINE_MINUTES,
so second candles look alive too. The feed starts each walk from the last recorded price,
so the live prices carry on from where the history ends.

Idempotent: a market that already has ticks or candles is left alone."""

from __future__ import annotations

import random
import time

from flask import current_app
from sqlalchemy import exists, select

from ..extensions import db
from . import candles, quotes, store
from .models import Candle, Market, MarketType, Tick
from .simulator import RandomWalk, WalkConfig

BACKFILL_STEP_SECONDS = 10
BACKFILL_FINE_MINUTES = 30
SOURCE = "SIM"


def tick_times(now_ms: int, hours: float, step_s: int, fine_minutes: int, fine_step_ms: int) -> list[int]:
    """The moments (ms) of the history ticks, oldest first, the last one at `now_ms`: every
    `step_s` seconds on the clock's grid, then every `fine_step_ms` for the last minutes."""
    start_ms = now_ms - int(hours * 3_600_000)
    fine_from = max(start_ms, now_ms - fine_minutes * 60_000)
    step_ms = step_s * 1000
    first = start_ms - start_ms % step_ms + (step_ms if start_ms % step_ms else 0)
    times = list(range(first, fine_from, step_ms))
    fine_first = now_ms - ((now_ms - fine_from) // fine_step_ms) * fine_step_ms
    times.extend(range(fine_first, now_ms + 1, fine_step_ms))
    return times


def _has_history(symbol: str) -> bool:
    return bool(db.session.scalar(select(exists().where(Tick.symbol == symbol))) or
                db.session.scalar(select(exists().where(Candle.symbol == symbol))))


def backfill_market(market: Market, now_ms: int, hours: float, *, seed: int | str | None = None,
                    step_s: int = BACKFILL_STEP_SECONDS, fine_minutes: int = BACKFILL_FINE_MINUTES,
                    fine_step_ms: int | None = None) -> int:
    """Record `hours` of simulated history for one market, ending at `now_ms`, and store its
    candles. Returns the number of ticks written (0 when the market has history already)."""
    if _has_history(market.symbol):
        return 0
    fine_step_ms = fine_step_ms or max(current_app.config["FEED_TICK_INTERVAL_MS"], 100)
    times = tick_times(now_ms, hours, step_s, fine_minutes, fine_step_ms)
    walk = RandomWalk(market.initial_price, WalkConfig(market.volatility_mode, float(market.trend_bias),
                                                       market.precision, market.spread), seed)
    ids = store.reserve_tick_ids(len(times))
    writer = store.TickWriter(max_buffer=len(times) + 1)
    previous = None
    for tick_id, ts_ms in zip(ids, times, strict=True):
        if previous is not None:
            walk.step((ts_ms - previous) / 1000)
        previous = ts_ms
        quote = walk.quote()
        writer.add(store.TickRow(tick_id, market.symbol, ts_ms, quote.bid, quote.ask, quote.mid, SOURCE))
    if writer.flush() != len(times):
        raise RuntimeError(f"{market.symbol}: could not write its history ticks")
    candles.aggregate(market.symbol, now_ms)
    return len(times)


def backfill_history(hours: float | None = None, now_ms: int | None = None, seed: int | None = None) -> str:
    """The seeder: history for every active simulated market that has none yet."""
    config = current_app.config
    hours = config["SEED_BACKFILL_HOURS"] if hours is None else hours
    if hours <= 0:
        return "History: not backfilled (SEED_BACKFILL_HOURS is 0)."
    now_ms = quotes.now_ms() if now_ms is None else now_ms
    seed = config.get("FEED_SEED") if seed is None else seed
    if seed is None:
        seed = random.SystemRandom().randrange(2**32)
    markets = list(db.session.scalars(
        select(Market).where(Market.active.is_(True), Market.market_type != MarketType.FOREX.value,
                             Market.initial_price.is_not(None)).order_by(Market.symbol)))
    started = time.monotonic()
    filled = []
    for market in markets:
        if backfill_market(market, now_ms, hours, seed=f"{seed}:history:{market.symbol}"):
            filled.append(market.symbol)
    db.session.commit()
    if not filled:
        return "History: every simulated market has history already."
    return (f"History: {hours:g} h of simulated prices for {len(filled)} market(s) "
            f"in {time.monotonic() - started:.1f} s ({', '.join(filled)}).")
