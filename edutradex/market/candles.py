"""Candles (OHLC of the mid price) at 1s, 5s, 1m, 5m, 15m, 30m, 1h, 4h and 1d.

- Sub-minute candles are built on the fly from raw ticks (which are kept for the
  retention period).
- Candles of a minute and longer are stored: the feed aggregates each completed minute's
  ticks into a 1m candle, then recomputes the 5m..1d candles that contain it from the 1m
  candles. Recomputing (not incrementing) makes a repeated pass harmless.
- A query for 1m and longer reads the stored candles and adds the minutes not aggregated
  yet straight from the ticks, so the newest candle is always current.

Buckets are aligned to the Unix epoch, so 4h and 1d candles start at UTC midnight."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from ..extensions import db
from .models import Candle, Tick

RESOLUTIONS: dict[str, int] = {
    "1s": 1, "5s": 5, "1m": 60, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "4h": 14400, "1d": 86400,
}
MINUTE = 60
STORED = tuple(seconds for seconds in RESOLUTIONS.values() if seconds >= MINUTE)
HIGHER = tuple(seconds for seconds in STORED if seconds > MINUTE)
AGGREGATE_MAX_TICKS = 200_000  # per symbol per pass, to keep one pass bounded after downtime


@dataclass
class Bar:
    start_s: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    tick_count: int = 1

    def merge(self, later: Bar) -> None:
        self.high = max(self.high, later.high)
        self.low = min(self.low, later.low)
        self.close = later.close
        self.tick_count += later.tick_count


def bucket(ts_s: int, seconds: int) -> int:
    return ts_s - ts_s % seconds


def bars_from_ticks(ticks: Iterable[tuple[int, Decimal]], seconds: int) -> list[Bar]:
    """(ts_ms, mid) in time order -> bars of `seconds`."""
    bars: list[Bar] = []
    current: Bar | None = None
    for ts_ms, mid in ticks:
        start = bucket(ts_ms // 1000, seconds)
        if current is not None and current.start_s == start:
            current.high = max(current.high, mid)
            current.low = min(current.low, mid)
            current.close = mid
            current.tick_count += 1
        else:
            current = Bar(start, mid, mid, mid, mid)
            bars.append(current)
    return bars


def bars_from_bars(parts: Iterable[Bar], seconds: int) -> list[Bar]:
    """Shorter bars in time order -> bars of `seconds`."""
    bars: list[Bar] = []
    for part in parts:
        start = bucket(part.start_s, seconds)
        if bars and bars[-1].start_s == start:
            bars[-1].merge(part)
        else:
            bars.append(Bar(start, part.open, part.high, part.low, part.close, part.tick_count))
    return bars


def _ticks(symbol: str, from_ms: int, to_ms: int, limit: int | None = None) -> list[tuple[int, Decimal]]:
    query = (select(Tick.ts_ms, Tick.mid).where(Tick.symbol == symbol, Tick.ts_ms >= from_ms, Tick.ts_ms < to_ms)
             .order_by(Tick.ts_ms, Tick.id))
    if limit:
        query = query.limit(limit)
    return [(ts, mid) for ts, mid in db.session.execute(query)]


def _stored(symbol: str, seconds: int, from_s: int, to_s: int) -> list[Bar]:
    query = (select(Candle.start_s, Candle.open, Candle.high, Candle.low, Candle.close, Candle.tick_count)
             .where(Candle.symbol == symbol, Candle.resolution == seconds,
                    Candle.start_s >= from_s, Candle.start_s < to_s)
             .order_by(Candle.start_s))
    return [Bar(*row) for row in db.session.execute(query)]


def aggregated_until(symbol: str) -> int | None:
    """Unix seconds up to which ticks are aggregated into stored candles (None: nothing yet)."""
    last = db.session.scalar(select(func.max(Candle.start_s)).where(Candle.symbol == symbol, Candle.resolution == MINUTE))
    return None if last is None else last + MINUTE


def _upsert(symbol: str, seconds: int, bars: list[Bar]) -> None:
    if not bars:
        return
    rows = [{"symbol": symbol, "resolution": seconds, "start_s": b.start_s, "open": b.open, "high": b.high,
             "low": b.low, "close": b.close, "tick_count": b.tick_count} for b in bars]
    dialect = db.engine.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(Candle)
    statement = statement.on_conflict_do_update(
        index_elements=["symbol", "resolution", "start_s"],
        set_={name: statement.excluded[name] for name in ("open", "high", "low", "close", "tick_count")},
    )
    db.session.execute(statement, rows)


def aggregate(symbol: str, now_ms: int, grace_ms: int = 2000) -> int:
    """Store the candles of every minute that ended at least `grace_ms` ago (time for the
    writer to flush its last ticks). Returns how many 1m candles were added."""
    done = aggregated_until(symbol)
    if done is None:
        first = db.session.scalar(select(func.min(Tick.ts_ms)).where(Tick.symbol == symbol))
        if first is None:
            return 0
        done = bucket(first // 1000, MINUTE)
    until = bucket((now_ms - grace_ms) // 1000, MINUTE)
    if until <= done:
        return 0
    ticks = _ticks(symbol, done * 1000, until * 1000, limit=AGGREGATE_MAX_TICKS)
    if len(ticks) == AGGREGATE_MAX_TICKS:
        # Stop before the minute the limit cut into; the next pass carries on from there.
        until = max(bucket(ticks[-1][0] // 1000, MINUTE), done + MINUTE)
        ticks = [t for t in ticks if t[0] < until * 1000]
    return store_minutes(symbol, bars_from_ticks(ticks, MINUTE))


def store_minutes(symbol: str, minutes: list[Bar]) -> int:
    """Store 1m bars (time order) and recompute the longer candles containing them; commits."""
    if not minutes:
        return 0
    _upsert(symbol, MINUTE, minutes)
    for seconds in HIGHER:
        starts = sorted({bucket(m.start_s, seconds) for m in minutes})
        parts = _stored(symbol, MINUTE, starts[0], starts[-1] + seconds)
        _upsert(symbol, seconds, bars_from_bars(parts, seconds))
    db.session.commit()
    return len(minutes)


def candles(symbol: str, seconds: int, from_s: int, to_s: int) -> list[Bar]:
    """Bars whose start lies in [from_s, to_s] (from_s rounded down to a bucket)."""
    start = bucket(from_s, seconds)
    end = bucket(to_s, seconds) + seconds  # exclusive
    if seconds < MINUTE:
        return bars_from_ticks(_ticks(symbol, start * 1000, end * 1000), seconds)
    done = aggregated_until(symbol)
    bars = _stored(symbol, seconds, start, end) if done is not None else []
    tail_from = start if done is None else max(start, done)
    if tail_from < end:
        tail = bars_from_ticks(_ticks(symbol, tail_from * 1000, end * 1000), seconds)
        if tail and bars and bars[-1].start_s == tail[0].start_s:
            bars[-1].merge(tail.pop(0))
        bars.extend(tail)
    return bars
