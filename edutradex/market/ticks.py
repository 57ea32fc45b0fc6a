"""Reading the tick store. Writing is the feed loop's job (batched)."""

from __future__ import annotations

from sqlalchemy import or_, select

from ..extensions import db
from .models import FeedAuthority, Tick, TickGap


def tick_at_or_before(symbol: str, ts_ms: int) -> Tick | None:
    """The price recorded at or before a moment: what settlement relies on."""
    return db.session.scalar(
        select(Tick).where(Tick.symbol == symbol, Tick.ts_ms <= ts_ms).order_by(Tick.ts_ms.desc(), Tick.id.desc()).limit(1)
    )


def first_tick_after(symbol: str, ts_ms: int) -> Tick | None:
    return db.session.scalar(
        select(Tick).where(Tick.symbol == symbol, Tick.ts_ms > ts_ms).order_by(Tick.ts_ms, Tick.id).limit(1)
    )


def flushed_watermark() -> int | None:
    """Every tick the authority made at or before this time (ms) is stored or lies in a
    recorded gap; None before any authority wrote."""
    return db.session.scalar(select(FeedAuthority.flushed_ms).where(FeedAuthority.id == 1))


def gaps_overlapping(symbol: str, from_ms: int, to_ms: int) -> list[TickGap]:
    """Recorded gaps of `symbol` (or of every symbol) that reach into [from_ms, to_ms]."""
    return list(db.session.scalars(
        select(TickGap).where(or_(TickGap.symbol == symbol, TickGap.symbol.is_(None)),
                              TickGap.from_ms <= to_ms, TickGap.to_ms >= from_ms)
    ))
