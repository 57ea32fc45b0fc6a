"""Writing the tick store: batched inserts and pruning. Only the feed loop writes here.

Each flush is one INSERT executed with many parameter sets in one short transaction, so
SQLite (one writer at a time) is held for milliseconds, not once per tick."""

from __future__ import annotations

import collections
import logging
import time
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import delete, func, insert, select, text

from ..extensions import db
from .models import Tick

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TickRow:
    id: int
    symbol: str
    ts_ms: int
    bid: Decimal
    ask: Decimal
    mid: Decimal
    source: str

    def as_params(self) -> dict:
        return {"id": self.id, "symbol": self.symbol, "ts_ms": self.ts_ms, "bid": self.bid, "ask": self.ask,
                "mid": self.mid, "source": self.source}


class TickIds:
    """Ids for ticks, handed out by the feed as it makes them, so the latest quote (and a
    trade placed on it) can name its tick before the batch that stores it is written.
    Reserved from the database a block at a time and committed before use: a crash loses
    at most unused ids, and an id is never handed out twice."""

    def __init__(self, block: int = 1000):
        self.block = block
        self.ids: collections.deque[int] = collections.deque()

    def next(self) -> int:
        if not self.ids:
            self.ids.extend(reserve_tick_ids(self.block))
        return self.ids.popleft()


def reserve_tick_ids(count: int) -> list[int]:
    """`count` ids no tick has or will be given by anyone else. PostgreSQL: the table's own
    sequence. SQLite: the table is AUTOINCREMENT, so new rows are numbered above the
    high-water mark in sqlite_sequence, which the reservation raises."""
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            return list(conn.execute(text("SELECT nextval(pg_get_serial_sequence('ticks', 'id')) "
                                          "FROM generate_series(1, :count)"), {"count": count}).scalars())
        mark = conn.execute(text("SELECT seq FROM sqlite_sequence WHERE name = 'ticks'")).scalar()
        top = max(mark or 0, conn.scalar(select(func.max(Tick.id))) or 0)
        if mark is None:
            conn.execute(text("INSERT INTO sqlite_sequence (name, seq) VALUES ('ticks', :seq)"), {"seq": top + count})
        else:
            conn.execute(text("UPDATE sqlite_sequence SET seq = :seq WHERE name = 'ticks'"), {"seq": top + count})
        return list(range(top + 1, top + count + 1))


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
