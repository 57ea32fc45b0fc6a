"""Writing the tick store: batched inserts and pruning. Only the feed loop writes here.

Each flush is one INSERT executed with many parameter sets in one short transaction, so
SQLite (one writer at a time) is held for milliseconds, not once per tick. The same
transaction checks the authority's epoch (the fence, see authority.py) and moves the
store's watermark (`feed_authority.flushed_ms`), which settlement waits for."""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import case, delete, func, insert, select, text, update

from ..extensions import db
from .models import FeedAuthority, Tick, TickGap

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
    epoch: int | None = None
    seq: int | None = None  # simulated: the tick number in its fairness period

    def as_params(self) -> dict:
        return {"id": self.id, "symbol": self.symbol, "ts_ms": self.ts_ms, "bid": self.bid, "ask": self.ask,
                "mid": self.mid, "source": self.source, "epoch": self.epoch, "seq": self.seq}


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


AUTHORITY_ROW = 1


def _short_lived(conn) -> None:
    """PostgreSQL: end this transaction if its process stalls inside it (SIGSTOP, a frozen
    VM), so a paused old holder cannot keep the authority row locked against the next one."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET LOCAL idle_in_transaction_session_timeout = '2s'"))


class StaleAuthority(RuntimeError):
    """A newer holder raised the epoch: this writer may no longer write the tick store."""


def take_authority(now_ms: int) -> int:
    """Become the tick store's writer: raise the epoch, which fences every earlier holder's
    flushes out. If the last holder did not stop cleanly, the ticks it made after its last
    flush are lost: record that stretch as a gap (every symbol) so settlement never uses a
    price across it. Returns the new epoch."""
    table = FeedAuthority.__table__
    with db.engine.begin() as conn:
        _short_lived(conn)
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        conn.execute(dialect_insert(table).values(id=AUTHORITY_ROW, epoch=0, clean=True).on_conflict_do_nothing())
        # the first statement takes the row lock (PostgreSQL) / the write lock (SQLite): it
        # waits for a flush of the old holder that is under way, then fences every later one
        epoch, flushed_ms, clean = conn.execute(
            update(table).where(table.c.id == AUTHORITY_ROW).values(epoch=table.c.epoch + 1)
            .returning(table.c.epoch, table.c.flushed_ms, table.c.clean)).one()
        conn.execute(update(table).where(table.c.id == AUTHORITY_ROW).values(clean=False))
        if not clean and flushed_ms is not None and flushed_ms < now_ms:
            conn.execute(insert(TickGap).values(symbol=None, from_ms=flushed_ms + 1, to_ms=now_ms, ticks_lost=None,
                                                reason="authority_lost"))
            log.warning("the last price authority stopped without writing its last ticks: recorded a gap "
                        "from %d to %d ms", flushed_ms + 1, now_ms)
    return epoch


class TickWriter:
    """Buffers ticks and writes them in batches: when `flush_interval` seconds passed since
    the last flush or `max_batch` ticks are waiting. A failed flush keeps the ticks and is
    retried on the next one. Past `max_buffer` unwritten ticks the oldest are dropped, never
    silently: each symbol's dropped stretch is written as a TickGap with the next flush,
    logged, and counted in `dropped`.

    With an `epoch` (the feed sets it when it takes the authority) every flush is fenced
    and moves the watermark to the `through_ms` it is given; a flush refused by the fence
    raises StaleAuthority."""

    def __init__(self, flush_interval: float = 0.25, max_batch: int = 500, max_buffer: int = 100_000,
                 clock=time.monotonic):
        self.flush_interval = flush_interval
        self.max_batch = max_batch
        self.max_buffer = max_buffer
        self.clock = clock
        self.buffer: list[TickRow] = []
        self.gaps: dict[str, list[int]] = {}  # symbol -> [from_ms, to_ms, ticks] dropped, not yet recorded
        self.last_flush = clock()
        self.written = 0
        self.dropped = 0
        self.epoch: int | None = None
        # called with the rows of each successful flush (possibly none), after its commit
        self.on_flushed: Callable[[list[TickRow]], None] | None = None

    def add(self, row: TickRow) -> None:
        self.buffer.append(row)
        if len(self.buffer) > self.max_buffer:
            self._drop(len(self.buffer) - self.max_buffer)

    def _drop(self, count: int) -> None:
        if not self.gaps:  # once per outage, not once per tick
            log.error("tick store unreachable and the buffer is full: dropped the oldest unwritten ticks "
                      "(recorded as gaps once the store is back; %d dropped before)", self.dropped)
        dropped, self.buffer = self.buffer[:count], self.buffer[count:]
        for row in dropped:
            gap = self.gaps.setdefault(row.symbol, [row.ts_ms, row.ts_ms, 0])
            gap[0], gap[1], gap[2] = min(gap[0], row.ts_ms), max(gap[1], row.ts_ms), gap[2] + 1
        self.dropped += count

    def forget(self) -> None:
        """Drop everything unwritten (the authority was lost: the next holder records the gap)."""
        self.buffer, self.gaps, self.epoch = [], {}, None

    def due(self) -> bool:
        waiting = bool(self.buffer) or self.epoch is not None  # a fenced writer moves the watermark too
        return waiting and (len(self.buffer) >= self.max_batch
                            or self.clock() - self.last_flush >= self.flush_interval - 0.0005)

    def flush(self, through_ms: int | None = None, *, final: bool = False) -> int:
        """Write the buffer; with an epoch, also record that every tick made at or before
        `through_ms` is now stored (or in a recorded gap). `final`: the holder is stopping
        after this batch (the next one need not record a gap)."""
        self.last_flush = self.clock()
        if not self.buffer and not self.gaps and (self.epoch is None or through_ms is None):
            return 0
        rows, self.buffer = self.buffer, []
        gaps = [{"symbol": symbol, "from_ms": low, "to_ms": high, "ticks_lost": count, "reason": "buffer_full"}
                for symbol, (low, high, count) in self.gaps.items()]
        try:
            with db.engine.begin() as conn:
                if self.epoch is not None:
                    _short_lived(conn)
                    self._fence(conn, through_ms, final)
                if gaps:
                    conn.execute(insert(TickGap), gaps)
                if rows:
                    conn.execute(insert(Tick), [row.as_params() for row in rows])
        except StaleAuthority:
            self.buffer[:0] = rows
            raise
        except Exception:
            log.exception("could not write %d ticks; will retry", len(rows))
            self.buffer[:0] = rows
            return 0
        except BaseException:  # interrupted mid-write (a greenlet killed): the rows stay for the final flush
            self.buffer[:0] = rows
            raise
        if gaps:
            log.error("recorded %d tick gap(s): %d ticks lost while the store was unreachable",
                      len(gaps), sum(gap["ticks_lost"] for gap in gaps))
        self.gaps = {}
        self.written += len(rows)
        if self.on_flushed is not None:
            self.on_flushed(rows)
        return len(rows)

    def _fence(self, conn, through_ms: int | None, final: bool) -> None:
        table = FeedAuthority.__table__
        values = {"clean": True} if final else {}
        if through_ms is not None:
            values["flushed_ms"] = case((table.c.flushed_ms.is_(None), through_ms),
                                        (table.c.flushed_ms < through_ms, through_ms), else_=table.c.flushed_ms)
        if not values:
            values["epoch"] = table.c.epoch
        fenced = conn.execute(update(table).where(table.c.id == AUTHORITY_ROW, table.c.epoch == self.epoch)
                              .values(**values)).rowcount
        if fenced != 1:
            raise StaleAuthority(f"epoch {self.epoch} was superseded: another feed process holds the price authority")


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
