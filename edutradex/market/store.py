"""Writing the tick store: batched inserts and pruning. Only the feed loop writes here.

Each flush is one INSERT executed with many parameter sets in one short transaction, so
SQLite (one writer at a time) is held for milliseconds, not once per tick."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import delete, insert, select

from ..extensions import db
from .models import Tick

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TickRow:
    symbol: str
    ts_ms: int
    bid: Decimal
    ask: Decimal
    mid: Decimal
    source: str

    def as_params(self) -> dict:
        return {"symbol": self.symbol, "ts_ms": self.ts_ms, "bid": self.bid, "ask": self.ask,
                "mid": self.mid, "source": self.source}


class TickWriter:
    """Buffers ticks and writes them in batches: when `flush_interval` seconds passed since
    the last flush or `max_batch` ticks are waiting. A failed flush keeps the ticks (up to
    `max_buffer`) and is retried on the next one."""

    def __init__(self, flush_interval: float = 0.25, max_batch: int = 500, max_buffer: int = 100_000,
                 clock=time.monotonic):
        self.flush_interval = flush_interval
        self.max_batch = max_batch
        self.max_buffer = max_buffer
        self.clock = clock
        self.buffer: list[TickRow] = []
        self.last_flush = clock()
        self.written = 0

    def add(self, row: TickRow) -> None:
        self.buffer.append(row)
        if len(self.buffer) > self.max_buffer:
            dropped = len(self.buffer) - self.max_buffer
            del self.buffer[:dropped]
            log.error("tick store unreachable: dropped the %d oldest unwritten ticks", dropped)

    def due(self) -> bool:
        return bool(self.buffer) and (len(self.buffer) >= self.max_batch
                                      or self.clock() - self.last_flush >= self.flush_interval - 0.0005)

    def flush(self) -> int:
        self.last_flush = self.clock()
        if not self.buffer:
            return 0
        rows, self.buffer = self.buffer, []
        try:
            with db.engine.begin() as conn:
                conn.execute(insert(Tick), [row.as_params() for row in rows])
        except Exception:
            log.exception("could not write %d ticks; will retry", len(rows))
            self.buffer[:0] = rows
            return 0
        self.written += len(rows)
        return len(rows)


PRUNE_BATCH = 5000


def prune_ticks(symbol: str, before_ms: int) -> int:
    """Delete raw ticks older than `before_ms`, a few thousand per short transaction."""
    total = 0
    while True:
        ids = select(Tick.id).where(Tick.symbol == symbol, Tick.ts_ms < before_ms).limit(PRUNE_BATCH)
        with db.engine.begin() as conn:
            deleted = conn.execute(delete(Tick).where(Tick.id.in_(ids.scalar_subquery()))).rowcount
        total += deleted
        if deleted < PRUNE_BATCH:
            return total
