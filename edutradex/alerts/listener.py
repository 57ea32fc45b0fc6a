"""The alert engine: every ACTIVE price alert, judged on the price authority's recorded ticks.

Where it runs: inside the price authority (market/feed.py), as a tick listener
(``app.extensions["tick_listeners"]``), next to the CFD engine and built the same way. The
feed hands it each batch of ticks right after the batch is committed, in tick-id order; it
is told when the feed takes the authority (rebuild the book from the database, replay the
recorded ticks after its watermark) and when it loses it (forget everything).

Per tick (``process``): the trigger book (book.py over competitions/triggers.py) pops only
the alerts whose condition the tick's mid meets. Everything that tick does to alerts is ONE
transaction: per alert a conditional UPDATE (``WHERE status = 'ACTIVE' AND watching = <what
the engine had> AND last_tick_id < <this tick>``) moves it on (fired once: FIRED; every
time: the opposite condition), a fire inserts its ``alert_fires`` row (unique on alert and
tick), and the symbol's watermark moves to this tick in the same commit. So a tick is done
exactly when its fires are recorded: a crash before the commit replays the tick, one after
it never fires it again. After the commit: the owner's ``user:<id>`` room gets an
``alert_fired`` frame (the toast and the bell's unread count) and the email job, id
``alert-email-<fire id>``, is enqueued; the job takes the fire (``emailed_at``,
conditionally) before sending, so a repeated enqueue sends once. Fires whose email was never
taken (a crash between the commit and the enqueue) are enqueued again at start and by the
reconcile.

The watermark (``AlertEngineState``): the last tick of a symbol fully processed; written with
every tick that changed an alert, else every WATERMARK_EVERY_S. A symbol the engine never saw
starts at its latest recorded tick.

Intake: the web commits, then ``notify(alert_id)``: an in-process call when the engine runs
in the same process, a Redis message on NOTICE_CHANNEL when REDIS_URL is set. A reconcile
with the database every ALERTS_RECONCILE_SECONDS (and the expiry of alerts past their date)
makes a lost notice cost seconds, and no crossing: a new alert is checked against the recorded
ticks the engine processed since it was set (``_catch_up``), so a tick that crossed its level
before the engine heard of it still fires it, at that tick.

Not thread-safe: everything runs in the feed loop.
"""

from __future__ import annotations

import collections
import gc
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from flask import Flask
from sqlalchemy import func, insert, select, update

from ..competitions.triggers import Trigger, TriggerBook
from ..extensions import db, socketio
from ..market import listeners
from ..market.models import Tick
from ..market.service import market_snapshot
from ..market.store import TickRow
from ..types import utcnow
from . import book
from .models import AlertEngineState, AlertFire, AlertStatus, PriceAlert

log = logging.getLogger(__name__)

NOTICE_CHANNEL = "edutradex:alerts:notices"
FIRED_EVENT = "alert_fired"
WATERMARK_EVERY_S = 1.0
REPLAY_BATCH = 2000
START_RETRY_S = 2.0
EMAIL_RETRY_AFTER = timedelta(seconds=60)  # a fire whose email no job took is enqueued again after this
EMAIL_GIVE_UP_AFTER = timedelta(days=1)  # ... until it is this old (it stays in the notifications)

_COLUMNS = (PriceAlert.id, PriceAlert.user_id, PriceAlert.symbol, PriceAlert.kind, PriceAlert.level,
            PriceAlert.repeat, PriceAlert.watching, PriceAlert.expires_at, PriceAlert.created_at,
            PriceAlert.last_tick_id, PriceAlert.version)


class EngineBehind(listeners.EngineBehind):
    """A tick's transaction failed: the engine stops at that tick and replays from its
    watermark on the next pass."""


def ms(moment) -> int:
    return int(moment.timestamp() * 1000)


@dataclass(slots=True)
class _Alert:
    id: int
    user_id: int
    symbol: str
    kind: str
    level: Decimal
    repeat: bool
    watching: str
    since_ms: int  # set then: an earlier tick never moves it
    after_tick: int  # ... nor a tick at or before the one it last changed at
    expires_ms: int | None
    version: int


@dataclass(frozen=True)
class Fired:
    fire_id: int
    user_id: int
    message: str
    tick_id: int
    at: datetime  # when it was recorded (the notification's time)


class AlertEngine(listeners.TickListener):
    """The lifecycle (authority, start retry, notice channel, watermarks): market/listeners.py."""

    name = "alert engine"
    log = log
    channel = NOTICE_CHANNEL
    start_retry_s = START_RETRY_S
    watermark_every_s = WATERMARK_EVERY_S

    def __init__(self, app: Flask, *, monotonic: Callable[[], float] = time.monotonic):
        super().__init__(app, monotonic)
        self.notices: collections.deque[int]
        self.fired = 0
        self.email_due: dict[int, float] = {}  # fire id -> when its email may be enqueued again
        self._forget()

    def _forget(self) -> None:
        self.book = TriggerBook()
        self.alerts: dict[int, _Alert] = {}
        self.watermarks: dict[str, int] = {}
        self.saved: dict[str, int] = {}
        self.next_reconcile = 0.0
        self.next_watermark = 0.0

    # ---- being the authority (on_authority, try_start, stop: listeners.TickListener) --------

    def start(self) -> None:
        """Rebuild the book from the database, then replay the recorded ticks after the
        watermark, before any live tick. Raises if any of it fails."""
        self._begin_start()
        self._expire()
        self._sync()
        self._load_watermarks()
        self.replay()
        self.save_watermarks()
        self._email_missed()
        self.next_reconcile = self.monotonic() + self._reconcile_every()
        self.active = True
        gc.freeze()  # the long-lived book out of the collector's way (as the CFD engine)
        log.info("alert engine running: %d alerts", len(self.book))

    def _reconcile_every(self) -> float:
        return self.app.config.get("ALERTS_RECONCILE_SECONDS", 5)

    # ---- the feed's calls (__call__: listeners.TickListener, then this) --------------------

    def housekeeping(self) -> None:
        now = self.monotonic()
        if now >= self.next_reconcile:
            self.reconcile()
        if now >= self.next_watermark:
            self.save_watermarks()

    # ---- intake --------------------------------------------------------------------------

    def notice(self, alert_id: int) -> None:
        self.notices.append(int(alert_id))

    def _notice_message(self, payload) -> None:
        self.notice(payload)  # an alert id, as notify publishes it

    def take_notices(self) -> None:
        self._read_pubsub()
        if not self.notices:
            return
        ids = set(self.notices)
        self.notices.clear()
        try:
            self._sync(ids)
        except Exception:
            log.exception("alert engine: notices %s failed; the reconcile will catch up", sorted(ids)[:10])
            db.session.rollback()
            self.next_reconcile = 0.0
        finally:
            db.session.remove()

    # ---- the picture from the database ---------------------------------------------------

    def reconcile(self) -> None:
        """Expire what is past its date, then make the book what the database says: only
        alerts whose version moved are reloaded. First one aggregate row, (count, sum of
        versions, largest id) of the ACTIVE alerts, against the engine's own: any change moves
        it (a new alert raises the largest id, every change of an alert raises its version,
        one leaving the set lowers the count unless a newer one came), so a reconcile that
        finds nothing changed reads one row, not every alert."""
        self.next_reconcile = self.monotonic() + self._reconcile_every()
        try:
            self._expire()
            count, versions, top = db.session.execute(
                select(func.count(), func.coalesce(func.sum(PriceAlert.version), 0),
                       func.coalesce(func.max(PriceAlert.id), 0))
                .where(PriceAlert.status == AlertStatus.ACTIVE.value)).one()
            mine = (len(self.alerts), sum(a.version for a in self.alerts.values()), max(self.alerts, default=0))
            if (count, versions, top) == mine:
                db.session.rollback()
                self._email_missed()
                return
            stamps = dict(db.session.execute(select(PriceAlert.id, PriceAlert.version)
                                             .where(PriceAlert.status == AlertStatus.ACTIVE.value)).all())
            db.session.rollback()
            changed = {i for i, v in stamps.items() if (known := self.alerts.get(i)) is None or known.version != v}
            changed |= set(self.alerts) - set(stamps)
            if changed:
                self._sync(changed)
            self._email_missed()
        except Exception:
            log.exception("alert engine: reconcile failed; retrying next pass")
            db.session.rollback()
            self.next_reconcile = self.monotonic() + 1.0
        finally:
            db.session.remove()

    def _sync(self, ids: Iterable[int] | None = None) -> None:
        """Every ACTIVE alert (no argument) or the given ones, as the database has them."""
        query = select(*_COLUMNS).where(PriceAlert.status == AlertStatus.ACTIVE.value)
        scope = None if ids is None else set(ids)
        if scope is not None:
            query = query.where(PriceAlert.id.in_(scope))
        rows = db.session.execute(query).all()
        db.session.rollback()
        stale = set(self.alerts) if scope is None else scope & set(self.alerts)
        new = []
        for row in rows:
            stale.discard(row.id)
            if row.id not in self.alerts:
                new.append(row.id)
            self._track(row)
        for alert_id in stale:
            self._forget_alert(alert_id)
        if self.active:
            for alert_id in new:
                self._catch_up(alert_id)

    def _catch_up(self, alert_id: int) -> None:
        """A new alert the engine learns of after ticks it has already processed (the notice
        takes a moment; a lost one, until the reconcile): the recorded ticks of its symbol
        after it was set, up to the watermark, meet its conditions exactly as live ticks
        would have, in order, so no crossing is missed for the notice's delay."""
        ops = {">=": Tick.mid.__ge__, "<=": Tick.mid.__le__, ">": Tick.mid.__gt__, "<": Tick.mid.__lt__}
        while (alert := self.alerts.get(alert_id)) is not None:
            mark = self.watermarks.get(alert.symbol, 0)
            tick = db.session.execute(
                select(Tick.id, Tick.symbol, Tick.ts_ms, Tick.bid, Tick.ask, Tick.mid)
                .where(Tick.symbol == alert.symbol, Tick.ts_ms >= alert.since_ms, Tick.id > alert.after_tick,
                       Tick.id <= mark, ops[alert.watching](alert.level))
                .order_by(Tick.id).limit(1)).first()
            db.session.rollback()
            if tick is None:
                return
            row = TickRow(tick.id, tick.symbol, tick.ts_ms, tick.bid, tick.ask, tick.mid, "")
            self.book.remove(alert_id)
            self._crossed([self._trigger(alert)], row)
            if self.alerts.get(alert_id) is alert and alert.after_tick < row.id:
                return  # nothing moved it (expired, or the database said otherwise): stop here

    def _track(self, row) -> None:
        known = self.alerts.get(row.id)
        if known is not None and known.version == row.version:
            return
        alert = _Alert(row.id, row.user_id, row.symbol, row.kind, row.level, row.repeat, row.watching,
                       ms(row.created_at), row.last_tick_id or 0,
                       ms(row.expires_at) if row.expires_at is not None else None, row.version)
        self.alerts[row.id] = alert
        self.book.add(self._trigger(alert))

    @staticmethod
    def _trigger(alert: _Alert) -> Trigger:
        return book.alert_trigger(alert.id, alert.symbol, alert.watching, alert.level)

    def _forget_alert(self, alert_id: int) -> None:
        self.alerts.pop(alert_id, None)
        self.book.remove(alert_id)

    def _expire(self) -> None:
        expired = db.session.scalars(
            update(PriceAlert).where(PriceAlert.status == AlertStatus.ACTIVE.value, PriceAlert.expires_at.is_not(None),
                                     PriceAlert.expires_at <= utcnow())
            .values(status=AlertStatus.EXPIRED.value, version=PriceAlert.version + 1)
            .returning(PriceAlert.id)).all()
        db.session.commit()
        for alert_id in expired:
            self._forget_alert(alert_id)

    def _email_missed(self) -> None:
        """Fires whose email no job has taken (lost between a commit and its enqueue, or given
        back by a failed send), each at most once per EMAIL_RETRY_AFTER, for EMAIL_GIVE_UP_AFTER."""
        now, monotonic = utcnow(), self.monotonic()
        missed = db.session.scalars(select(AlertFire.id).where(
            AlertFire.emailed_at.is_(None), AlertFire.created_at <= now - EMAIL_RETRY_AFTER,
            AlertFire.created_at > now - EMAIL_GIVE_UP_AFTER).order_by(AlertFire.id).limit(500)).all()
        db.session.rollback()
        self.email_due = {f: due for f, due in self.email_due.items() if f in missed}
        for fire_id in missed:
            if self.email_due.get(fire_id, 0.0) <= monotonic:
                self.email_due[fire_id] = monotonic + EMAIL_RETRY_AFTER.total_seconds()
                enqueue_email(fire_id)

    # ---- watermark and replay ------------------------------------------------------------

    def _load_watermarks(self) -> None:
        self.saved, self.watermarks = listeners.load_watermarks(AlertEngineState)
        db.session.rollback()

    def replay(self) -> int:
        """The recorded ticks after each symbol's watermark, in id order. Returns how many."""
        cursor = None
        for symbol, mark in self.watermarks.items():
            first = db.session.scalar(select(func.min(Tick.id)).where(Tick.symbol == symbol, Tick.id > mark))
            if first is not None:
                cursor = first - 1 if cursor is None else min(cursor, first - 1)
        db.session.rollback()
        if cursor is None:
            return 0
        replayed = 0
        while True:
            batch = db.session.execute(select(Tick.id, Tick.symbol, Tick.ts_ms, Tick.bid, Tick.ask, Tick.mid)
                                       .where(Tick.id > cursor).order_by(Tick.id).limit(REPLAY_BATCH)).all()
            db.session.rollback()
            for t in batch:
                cursor = t.id
                if t.id > self.watermarks.get(t.symbol, 0):
                    self.process(TickRow(t.id, t.symbol, t.ts_ms, t.bid, t.ask, t.mid, ""))
                    replayed += 1
            if len(batch) < REPLAY_BATCH:
                break
        if replayed:
            log.info("alert engine replayed %d recorded ticks after its watermark", replayed)
        return replayed

    def _write_marks(self, marks: dict[str, int]) -> None:  # save_watermarks: listeners.TickListener
        _write_watermarks(marks)

    # ---- one tick --------------------------------------------------------------------------

    def process(self, row: TickRow) -> None:
        symbol = row.symbol
        if row.id <= self.watermarks.get(symbol, 0):
            return
        crossed = self.book.pop_crossed(symbol, row.mid, row.mid)
        if crossed:
            self._crossed(crossed, row)
        self.watermarks[symbol] = row.id

    def _crossed(self, crossed: list[Trigger], row: TickRow) -> None:
        due: list[_Alert] = []
        expired: list[_Alert] = []
        for trigger in crossed:
            alert = self.alerts.get(trigger.key)
            if alert is None:
                continue
            if (row.id <= alert.after_tick or row.ts_ms < alert.since_ms
                    or not book.holds(alert.watching, row.mid, alert.level)):  # a strict one, at the level
                self.book.add(trigger)
            elif alert.expires_ms is not None and row.ts_ms > alert.expires_ms:
                expired.append(alert)
            else:
                due.append(alert)
        if not due and not expired:
            return
        try:
            fired = self._record(due, expired, row)
        except Exception:
            db.session.rollback()
            for alert in due + expired:  # back in the book: the replay of this tick tries again
                self.book.add(self._trigger(alert))
            log.exception("alert engine: tick %d failed; catching up from the tick store", row.id)
            raise EngineBehind(f"tick {row.id}") from None
        finally:
            db.session.remove()
        self.saved[row.symbol] = max(row.id, self.saved.get(row.symbol, 0))
        self.fired += len(fired)
        for fire in fired:
            announce(fire)
            enqueue_email(fire.fire_id)

    def _record(self, due: list[_Alert], expired: list[_Alert], row: TickRow) -> list[Fired]:
        """Everything this tick does to alerts, and the watermark, in one transaction."""
        fired: list[Fired] = []
        moved: list[tuple[_Alert, str, int, bool]] = []
        resync: list[int] = []
        for alert in due:
            fires = book.reports(alert.kind, alert.watching)
            done = fires and not alert.repeat
            after = book.NEXT[alert.watching]
            version = db.session.scalar(
                update(PriceAlert).where(PriceAlert.id == alert.id, PriceAlert.status == AlertStatus.ACTIVE.value,
                                         PriceAlert.watching == alert.watching, PriceAlert.level == alert.level,
                                         func.coalesce(PriceAlert.last_tick_id, 0) < row.id)
                .values(watching=after, last_tick_id=row.id, version=PriceAlert.version + 1,
                        fire_count=PriceAlert.fire_count + int(fires),
                        status=AlertStatus.FIRED.value if done else AlertStatus.ACTIVE.value)
                .returning(PriceAlert.version))
            if version is None:  # changed meanwhile (deleted, moved, already done): the database decides
                resync.append(alert.id)
                continue
            moved.append((alert, after, version, done))
            if fires:
                message, now = fire_message(alert.symbol, alert.watching, alert.level, row.mid), utcnow()
                fire_id = db.session.scalar(insert(AlertFire).values(
                    alert_id=alert.id, user_id=alert.user_id, symbol=alert.symbol, tick_id=row.id,
                    tick_ts_ms=row.ts_ms, price=row.mid, message=message, created_at=now)
                    .returning(AlertFire.id))
                fired.append(Fired(fire_id, alert.user_id, message, row.id, now))
        for alert in expired:
            db.session.execute(update(PriceAlert).where(PriceAlert.id == alert.id,
                                                        PriceAlert.status == AlertStatus.ACTIVE.value)
                               .values(status=AlertStatus.EXPIRED.value, version=PriceAlert.version + 1))
        _write_watermarks({row.symbol: row.id})
        db.session.commit()
        for alert, after, version, done in moved:
            if done:
                self._forget_alert(alert.id)
            else:
                alert.watching, alert.after_tick, alert.version = after, row.id, version
                self.book.add(self._trigger(alert))
        for alert in expired:
            self._forget_alert(alert.id)
        for alert_id in resync:
            self._forget_alert(alert_id)
            self.notices.append(alert_id)
        return fired


# ---- helpers ---------------------------------------------------------------------------------

def fire_message(symbol: str, watching: str, level: Decimal, mid: Decimal) -> str:
    market = market_snapshot(symbol)
    name, precision = (market.name, market.precision) if market is not None else (symbol, 5)
    quantum = Decimal(1).scaleb(-precision)
    up = watching in book.UP
    return (f"{name} {'rose' if up else 'fell'} to {mid.quantize(quantum):f}: "
            f"{'above' if up else 'below'} your alert at {level.quantize(quantum):f}.")


def _write_watermarks(marks: dict[str, int]) -> None:
    """Upsert AlertEngineState rows in the session's transaction (never lowering one)."""
    listeners.write_watermarks(AlertEngineState.__table__, marks)


def announce(fire: Fired) -> None:
    """The live toast and the bell's count, on the owner's room (after the commit)."""
    from ..core.events import user_room
    from .service import fire_frame, unread_count

    try:
        unread = unread_count(fire.user_id)
        db.session.rollback()
        socketio.emit(FIRED_EVENT, {**fire_frame(fire.fire_id, fire.message, fire.tick_id, fire.at), "unread": unread},
                      to=user_room(fire.user_id))
    except Exception:  # noqa: BLE001 - the notification list has it; a lost frame is only a late bell
        log.exception("could not announce alert fire %s", fire.fire_id)


def enqueue_email(fire_id: int) -> None:
    from .. import jobs
    from ..mail import RETRY_INTERVALS
    from .emails import send_alert_email

    try:
        jobs.enqueue(send_alert_email, fire_id, job_id=f"alert-email-{fire_id}", retry_intervals=RETRY_INTERVALS)
    except Exception:
        db.session.rollback()  # a job run in this process (sync mode) may have failed mid-transaction
        log.exception("could not enqueue the email of alert fire %s; the reconcile tries again", fire_id)


# ---- intake from the web -----------------------------------------------------------------------

def notify(alert_id: int) -> None:
    """Call after committing a change to an alert. In-process when the engine runs here;
    over Redis when REDIS_URL is set (the feed process listens)."""
    listeners.send_notice("alert_engine", NOTICE_CHANNEL, (alert_id,), int(alert_id),
                          what=f"alert engine of alert {alert_id}", log=log)


def init_app(app: Flask) -> None:
    engine = AlertEngine(app)
    app.extensions["alert_engine"] = engine
    app.extensions.setdefault("tick_listeners", []).append(engine)
