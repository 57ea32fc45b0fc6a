"""Reading the tick store. Writing is the feed loop's job (batched)."""

from __future__ import annotations

from sqlalchemy import select

from ..extensions import db
from .models import Tick


def tick_at_or_before(symbol: str, ts_ms: int) -> Tick | None:
    """The price recorded at or before a moment: what settlement relies on."""
    return db.session.scalar(
        select(Tick).where(Tick.symbol == symbol, Tick.ts_ms <= ts_ms).order_by(Tick.ts_ms.desc(), Tick.id.desc()).limit(1)
    )


def first_tick_after(symbol: str, ts_ms: int) -> Tick | None:
    return db.session.scalar(
        select(Tick).where(Tick.symbol == symbol, Tick.ts_ms > ts_ms).order_by(Tick.ts_ms, Tick.id).limit(1)
    )
