"""What the price authority's engines share: the lifecycle of a tick listener.

The CFD engine (competitions/engine.py) and the alert engine (alerts/listener.py) both run
inside the price authority (market/feed.py) as tick listeners
(``app.extensions["tick_listeners"]``) and are built the same way:

- told when the feed takes the authority (``on_authority(True)``: start, i.e. rebuild from the
  database and replay the recorded ticks after the watermark) and when it loses it (stop and
  forget everything); a start that fails is retried every ``start_retry_s`` on the feed's
  passes, and the retry's replay covers the ticks it missed;
- each pass (``__call__``): catch up if a tick failed part way (``EngineBehind``), take the
  notices, process the batch, then the engine's own ``housekeeping``;
- notices from the web: in-process (``notice``) when the engine runs in the web's process, and
  a Redis pub/sub channel read without blocking each pass when REDIS_URL is set; a lost
  notice costs a reconcile's delay (a failed read resubscribes and reconciles at once);
- per-symbol watermarks (the last tick fully processed), saved every ``watermark_every_s`` in
  a table of (symbol, last_tick_id, updated_at) that never goes down.

What differs stays in each engine: what a notice is, the replay (the CFD engine values its
books at the watermark and keeps each tick's source), the reconcile, the processing of a tick.
Not thread-safe: everything runs in the feed loop.
"""

from __future__ import annotations

import collections
import json
import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app
from sqlalchemy import Table, func, select

from ..extensions import db
from ..types import utcnow
from .models import Market, Tick
from .store import TickRow


class EngineBehind(RuntimeError):
    """A tick could not be fully processed: the engine stops at that tick and replays from
    its watermark on the next pass."""


class TickListener:
    """Base of an engine the feed runs as a tick listener. A subclass sets ``name`` (for the
    logs), ``log``, ``channel`` (its Redis notice channel), ``start_retry_s`` and
    ``watermark_every_s``, and implements ``_forget``, ``start``, ``replay``, ``take_notices``,
    ``process``, ``housekeeping``, ``notice``, ``_notice_message`` and ``_write_marks``."""

    name = "tick listener"
    log = logging.getLogger(__name__)
    channel = ""
    start_retry_s = 2.0
    watermark_every_s = 1.0

    def __init__(self, app: Flask, monotonic: Callable[[], float]):
        self.app = app
        self.monotonic = monotonic
        self.active = False
        self.held = False  # the feed holds the price authority: the engine should be running
        self.behind = False  # a tick failed part way: replay from the watermark before going on
        self.next_start = 0.0
        self.notices: collections.deque = collections.deque()
        self.pubsub = None

    # ---- being the authority -------------------------------------------------------------

    def on_authority(self, held: bool) -> None:
        self.held = held
        if held:
            self.try_start()
        else:
            self.stop()

    def try_start(self) -> bool:
        try:
            self.start()
            return True
        except Exception:
            self.log.exception("%s: could not rebuild and replay; trying again in %.0f s",
                               self.name, self.start_retry_s)
            db.session.rollback()
            self.active = False
            self.next_start = self.monotonic() + self.start_retry_s
            return False
        finally:
            db.session.remove()

    def _begin_start(self) -> None:
        """The first steps of every start: off, nothing known, subscribed afresh."""
        self.active = False
        self._forget()
        self.notices.clear()
        self.behind = False
        self._subscribe()

    def stop(self) -> None:
        if self.active:
            try:
                self.save_watermarks()
            except Exception:
                self.log.exception("could not save the %s's watermarks", self.name)
                db.session.rollback()
        self.active = False
        self._forget()
        self.notices.clear()
        self._unsubscribe()

    # ---- the feed's calls ----------------------------------------------------------------

    def __call__(self, rows: list[TickRow]) -> None:
        """A batch of ticks the feed has just committed (possibly none: a heartbeat)."""
        if not self.active:
            # a failed start is retried; its replay covers these rows (they are in the store)
            if not (self.held and self.monotonic() >= self.next_start and self.try_start()):
                return
        try:
            if self.behind:
                self.replay()  # from the watermark: the failed tick first, then these rows
                self.behind = False
            self.take_notices()
            for row in rows:
                self.process(row)
        except EngineBehind:
            self.behind = True
        self.housekeeping()

    # ---- the notice channel --------------------------------------------------------------

    def _subscribe(self) -> None:
        if not self.app.config.get("REDIS_URL"):
            return
        from .. import jobs

        self._unsubscribe()
        try:
            self.pubsub = jobs.redis_connection().pubsub()  # None from get_message means: nothing waiting
            self.pubsub.subscribe(self.channel)
        except Exception:
            self.log.exception("%s: cannot subscribe to %s; relying on the reconcile", self.name, self.channel)
            self.pubsub = None

    def _unsubscribe(self) -> None:
        if self.pubsub is not None:
            try:
                self.pubsub.close()
            except Exception:  # noqa: BLE001 - closing a dead connection
                pass
            self.pubsub = None

    def _read_pubsub(self) -> None:
        """The notices waiting on the channel, without blocking, into ``notice``."""
        if self.pubsub is None:
            return
        try:
            for _ in range(10_000):
                message = self.pubsub.get_message(timeout=0)
                if message is None:
                    return
                if message.get("type") != "message":
                    continue
                data = message["data"]
                self._notice_message(json.loads(data.decode() if isinstance(data, bytes) else data))
        except Exception:
            self.log.exception("%s: reading notices failed; resubscribing (the reconcile covers the gap)", self.name)
            self.next_reconcile = 0.0
            self._subscribe()

    # ---- watermarks ----------------------------------------------------------------------

    def save_watermarks(self) -> None:
        self.next_watermark = self.monotonic() + self.watermark_every_s
        changed = {s: i for s, i in self.watermarks.items() if self.saved.get(s) != i}
        if not changed:
            return
        try:
            self._write_marks(changed)
            db.session.commit()
            self.saved.update(changed)
        except Exception:
            self.log.exception("%s: could not save the watermarks", self.name)
            db.session.rollback()
        finally:
            db.session.remove()

    # ---- what a subclass provides ----------------------------------------------------------

    def _forget(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def replay(self) -> int:
        raise NotImplementedError

    def take_notices(self) -> None:
        raise NotImplementedError

    def process(self, row: TickRow) -> None:
        raise NotImplementedError

    def housekeeping(self) -> None:
        raise NotImplementedError

    def _notice_message(self, payload: Any) -> None:
        """One notice read from the channel (its JSON, decoded)."""
        raise NotImplementedError

    def _write_marks(self, marks: dict[str, int]) -> None:
        raise NotImplementedError


def load_watermarks(state: type) -> tuple[dict[str, int], dict[str, int]]:
    """(saved, watermarks): the rows of the engine's state table `state` (symbol ->
    last_tick_id), and the same with every market it never ran for at its latest recorded
    tick. In the session's transaction (the caller ends it)."""
    saved = dict(db.session.execute(select(state.symbol, state.last_tick_id)).all())
    watermarks = dict(saved)
    for symbol in db.session.scalars(select(Market.symbol)):
        if symbol not in watermarks:  # never ran for it: from its latest recorded tick
            watermarks[symbol] = db.session.scalar(select(func.max(Tick.id)).where(Tick.symbol == symbol)) or 0
    return saved, watermarks


def write_watermarks(table: Table, marks: dict[str, int]) -> None:
    """Upsert (symbol, last_tick_id, updated_at) rows of `table` in the session's transaction
    (never lowering one)."""
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    now = utcnow()
    for symbol, tick_id in marks.items():
        statement = dialect_insert(table).values(symbol=symbol, last_tick_id=tick_id, updated_at=now)
        db.session.execute(statement.on_conflict_do_update(
            index_elements=[table.c.symbol],
            set_={"last_tick_id": tick_id, "updated_at": now},
            where=table.c.last_tick_id < tick_id))


def send_notice(extension: str, channel: str, notice: tuple, payload: Any, *, what: str, log: logging.Logger) -> None:
    """Tell the engine at ``app.extensions[extension]`` of a committed change: in-process
    (``engine.notice(*notice)``) when it runs here (active, or held: starting or retrying a
    start), and ``payload`` as JSON on ``channel`` when REDIS_URL is set (the feed process
    listens). A failed publish is logged: the engine's reconcile finds the change."""
    app = current_app._get_current_object()  # noqa: SLF001
    engine = app.extensions.get(extension)
    if engine is not None and (engine.active or engine.held):
        engine.notice(*notice)
    if app.config.get("REDIS_URL"):
        from .. import jobs

        try:
            jobs.redis_connection().publish(channel, json.dumps(payload))
        except Exception:
            log.exception("could not notify the %s; its reconcile will find it", what)
