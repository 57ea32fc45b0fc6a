"""The CFD engine: pending orders, stop-losses, take-profits and the risk pass of every LIVE
CFD competition, judged on the price authority's recorded ticks.

Where it runs: inside the price authority (market/feed.py), as a tick listener
(``app.extensions["tick_listeners"]``). The feed hands it each batch of ticks right after the
batch is committed, in tick-id order, so every fill names a recorded tick, and a replay after
a restart sees exactly the ticks the live engine saw. It is told when the feed takes the
authority (rebuild the books from the database, then replay the recorded ticks after the
watermark) and when it loses it (forget everything).

Per tick of symbol S (``process``):

1. the trigger book (triggers.py) pops only the pending orders, SLs and TPs the tick crosses;
   each executes as its own transaction: the account is locked (positions.lock_account), the
   order or position is re-read (a trader may have moved its level, cancelled or closed it:
   the database decides, not the book), then positions.fill_pending_order / close_position,
   whose conditional UPDATE (``WHERE status = 'PENDING'`` / ``'OPEN'``) makes a manual close
   and an SL racing each other close the position once;
2. the risk pass: the RiskBook (risk.py, a float screen) names the accounts holding S that
   this tick takes into margin call, stop-out or below zero. Stop-out and negative candidates
   are re-checked exactly, in Decimal, from the database (margin.stop_out_plan with the
   positions valued at this tick); the positions it names close largest loss first at THIS
   tick; equity below 0 closes everything and sets the cash to 0 (negative-balance protection:
   competition points, nothing moves in the wallet ledger). A margin call warns the trader on
   ``user:<id>`` once per entry into the zone.

What a tick may touch: only orders and positions of LIVE CFD competitions, only ticks at or
before the competition's end (after it the end job closes everything at the end tick), only
ticks after the order was placed (its ``created_at``) or the position opened (its
``open_tick_id``): a replayed or delayed tick never fills something that did not exist yet.

The watermark (``CfdEngineState.last_tick_id`` per symbol): the last tick of the symbol the
engine has fully processed. Each fill's transaction writes the watermark as it stood before
that tick (the tick is not done until every trigger it crossed has run: a crash between two
fills of one tick replays the tick, and what already executed is no longer PENDING / OPEN);
once the tick is done and it did anything, the tick's own id is written; and every
``WATERMARK_EVERY_S`` otherwise. On start: rebuild, then replay the ticks with id above the
watermark in id order, before any live tick.

Intake: web processes write orders and changes to the database, commit, then ``notify(kind,
id)``: an in-process call when the engine runs in the same process (``cfd_listeners``), and a
Redis message on ``NOTICE_CHANNEL`` when REDIS_URL is set (the feed process reads it without
blocking, each pass). A reconcile with the database every CFD_RECONCILE_SECONDS makes a lost
notice cost seconds, not a missed stop.

The books are the engine's alone (not thread-safe): everything runs in the feed loop.
"""

from __future__ import annotations

import collections
import gc
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from flask import Flask
from sqlalchemy import func, select, update

from ..extensions import db, socketio
from ..market import listeners, quotes, ticks
from ..market.models import Market, Tick
from ..market.store import TickRow
from ..types import utcnow
from . import leaderboard, margin, positions, rules
from .models import (
    CfdEngineState,
    CfdOrder,
    CfdPosition,
    CloseReason,
    Competition,
    CompetitionKind,
    CompetitionStatus,
    OrderStatus,
    Participant,
    PositionStatus,
)
from .positions import At
from .risk import RiskBook
from .triggers import Trigger, TriggerBook, order_trigger, sl_trigger, tp_trigger

log = logging.getLogger(__name__)

NOTICE_CHANNEL = "edutradex:cfd:notices"
ACCOUNT_EVENT = "cfd_account"
WATERMARK_EVERY_S = 1.0
EQUITY_EVERY_S = 1.0  # Participant.equity (the standings) at most this often per account
REPLAY_BATCH = 2000
FULL_SYNC_ABOVE = 2000  # a reconcile that finds more changed than this loads everything at once
START_RETRY_S = 2.0
MISSING_RETRY_S = 5.0  # a start (rebuild + replay) that failed is tried again this often
MAX_ATTEMPTS = 3  # a trigger failing this often at one tick is set aside (logged) rather than stall the engine


class EngineBehind(listeners.EngineBehind):
    """A tick could not be fully processed (the database failed): the engine stops at that
    tick, keeps its watermark before it, and catches up from the tick store on the next pass."""
LATEST = 2**62  # a time after every tick


_ORDER_COLUMNS = (CfdOrder.id, CfdOrder.competition_id, CfdOrder.participant_id, CfdOrder.symbol, CfdOrder.side,
                  CfdOrder.order_type, CfdOrder.price, CfdOrder.created_at, CfdOrder.updated_at)
_POSITION_COLUMNS = (CfdPosition.id, CfdPosition.competition_id, CfdPosition.participant_id, CfdPosition.symbol,
                     CfdPosition.side, CfdPosition.lots, CfdPosition.contract_size, CfdPosition.open_price,
                     CfdPosition.open_tick_id, CfdPosition.stop_loss, CfdPosition.take_profit, CfdPosition.version)
_PARTICIPANT_COLUMNS = (Participant.id, Participant.competition_id, Participant.user_id, Participant.version,
                        Participant.cash, Participant.used_margin, Participant.day_start_balance,
                        Participant.day_start_day, Participant.topped_up)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _price(value: Decimal, like: Decimal) -> str:
    """`value` with the decimals of the tick price `like` when that loses nothing (a level
    stored as 1.09500000 reads 1.09500 next to a bid of 1.09490)."""
    shown = value.quantize(like) if value.quantize(like) == value else value
    return format(shown, "f")


@dataclass
class _Competition:
    id: int
    end_ms: int
    stop_out: Decimal
    margin_call: Decimal
    rules: rules.RuleSet | None = None  # its loss floors (rules.py), None: none


@dataclass
class _Order:
    id: int
    competition_id: int
    participant_id: int
    since_ms: int  # placed then: an earlier tick never fills it
    sig: tuple = ()  # what its trigger is made of: unchanged -> nothing to do on a reconcile
    stamp: object = None  # its updated_at: the reconcile reloads it when that moves


@dataclass
class _Position:
    id: int
    competition_id: int
    participant_id: int
    symbol: str
    since_tick_id: int  # opened at this tick: its SL/TP watch the later ones
    sig: tuple = ()
    stamp: object = None  # its version


@dataclass
class _Account:
    id: int
    competition_id: int
    user_id: int
    version: int
    positions: set[int] = field(default_factory=set)
    symbols: set[str] = field(default_factory=set)  # held, as the risk book has them
    cash: float = 0.0
    used_margin: float = 0.0
    equity_written: Decimal | None = None
    equity_due: float = 0.0
    floor_inputs: dict = field(default_factory=dict)  # what rules.floors needs, from the database
    breached: set[str] = field(default_factory=set)  # rules already recorded: no longer screened


class CfdEngine(listeners.TickListener):
    """The lifecycle (authority, start retry, notice channel, watermarks): market/listeners.py."""

    name = "CFD engine"
    log = log
    channel = NOTICE_CHANNEL
    start_retry_s = START_RETRY_S
    watermark_every_s = WATERMARK_EVERY_S

    def __init__(self, app: Flask, *, monotonic: Callable[[], float] = time.monotonic,
                 clock_ms: Callable[[], int] | None = None):
        super().__init__(app, monotonic)
        self.clock_ms = clock_ms or (lambda: quotes.now_ms())
        self.failures: dict[tuple, int] = {}
        self.notices: collections.deque[tuple[str, int]]
        self._forget()

    def _forget(self) -> None:
        self.triggers = TriggerBook()
        self.risk = RiskBook()
        self.competitions: dict[int, _Competition] = {}
        self.orders: dict[int, _Order] = {}
        self.positions: dict[int, _Position] = {}
        self.accounts: dict[int, _Account] = {}
        self.conversion: dict[str, str | None] = {}
        self.watermarks: dict[str, int] = {}
        self.saved: dict[str, int] = {}
        self.last_at: dict[str, At] = {}
        self.missing: dict[str, float] = {}  # symbols with no recorded tick yet -> when to look again
        self.warned: set[int] = set()  # accounts in the margin-call zone, warned once
        self.rules_day: int | None = None  # the UTC day of the latest tick: the daily-loss floors' day
        self.emptied: set[int] = set()  # accounts of ruled competitions that left the book: judge their last close
        self.next_reconcile = 0.0
        self.next_watermark = 0.0
        self.next_publish = 0.0
        self.fills = 0

    # ---- being the authority (on_authority, try_start, stop: listeners.TickListener) ----------

    def start(self) -> None:
        """Rebuild the books from the database, then replay the recorded ticks after the
        watermark, before any live tick. Raises if any of it fails (the engine stays off, its
        watermark where it was, and the next pass tries again)."""
        self._begin_start()
        self._expire_orders()
        self._sync()
        db.session.remove()
        self.next_reconcile = self.monotonic() + self.app.config.get("CFD_RECONCILE_SECONDS", 5)
        self._load_watermarks()
        for symbol, at in self.last_at.items():  # value the books as of the watermark
            row = TickRow(at.tick_id or 0, symbol, at.ts_ms, at.bid, at.ask, (at.bid + at.ask) / 2, "")
            self.risk.on_tick(symbol, float(at.bid), float(at.ask), self._usd_rate(symbol, row))
        self.replay()
        self.save_watermarks()
        self.active = True
        # the books are long-lived: move them out of the collector's generations, so a full
        # collection (triggered by any allocation) does not walk 100,000s of entries mid-tick
        gc.freeze()
        log.info("CFD engine running: %d triggers, %d accounts at risk", len(self.triggers), len(self.risk))

    # ---- the feed's calls (__call__: listeners.TickListener, then this) -----------------------

    def housekeeping(self) -> None:
        now = self.monotonic()
        if not self.behind:
            self.failures.clear()
        if now >= self.next_reconcile:
            self.reconcile()
        self.write_equity(now)
        if self.emptied:
            self.judge_emptied()
        if now >= self.next_publish:
            self.publish_boards(now)
        for participant_id in [p for p in self.warned if p not in self.risk or not self._below(p, "margin_call")]:
            self.warned.discard(participant_id)  # out of the zone: a later entry warns again
        if now >= self.next_watermark:
            self.save_watermarks()

    # ---- intake -------------------------------------------------------------------------------

    def notice(self, kind: str, ident: int) -> None:
        """An order, position, account or competition changed in the database (committed)."""
        self.notices.append((kind, int(ident)))

    def _notice_message(self, payload) -> None:
        kind, ident = payload  # [kind, id], as notify publishes it
        self.notice(kind, ident)

    def take_notices(self) -> None:
        """Bring the books in line with what the notices waiting now name, in one sync (the
        accounts they touch, three queries). Notices that arrive meanwhile (the web keeps
        placing while this waits on the database) are the next pass's: taking them too, a
        sync each, kept the feed in this loop for as long as orders kept coming, making no
        tick, until every quote was stale and every order refused."""
        self._read_pubsub()
        waiting = [self.notices.popleft() for _ in range(len(self.notices))]
        scopes: dict[str, set[int]] = {"order_ids": set(), "position_ids": set(), "participant_ids": set()}
        for kind, ident in waiting:
            if kind == "order":
                scopes["order_ids"].add(ident)
            elif kind == "position":
                scopes["position_ids"].add(ident)
            elif kind in ("account", "participant"):
                scopes["participant_ids"].add(ident)
            else:  # a competition started or ended, or anything else: the whole picture
                self.next_reconcile = 0.0
        if not any(scopes.values()):
            return
        try:
            self._sync(**scopes)
        except Exception:
            log.exception("CFD engine: %d notice(s) failed; the reconcile will catch up", len(waiting))
            db.session.rollback()
            self.next_reconcile = 0.0
        finally:
            db.session.remove()

    # ---- the picture from the database --------------------------------------------------------

    def reconcile(self) -> None:
        """Make the books what the database says: every PENDING order and OPEN position of a
        LIVE CFD competition, and the accounts holding positions. Cheap when nothing changed:
        a trigger whose level is unchanged keeps its place, an account whose version is
        unchanged is not reloaded."""
        self.next_reconcile = self.monotonic() + self.app.config.get("CFD_RECONCILE_SECONDS", 5)
        try:
            self._expire_orders()
            self._sync_changed()
        except Exception:
            log.exception("CFD engine: reconcile failed; retrying next pass")
            db.session.rollback()
            self.next_reconcile = self.monotonic() + 1.0
        finally:
            db.session.remove()

    def _sync_changed(self) -> None:
        """The reconcile's diff: first only the ids and stamps of every PENDING order
        (updated_at), OPEN position and account holding one (version); then the full rows of
        what is new or changed, and forget what is gone. Everything changed at once (a
        restart of many): one full load instead."""
        self.competitions = self._live_competitions()
        live = list(self.competitions)
        orders = dict(db.session.execute(select(CfdOrder.id, CfdOrder.updated_at).where(
            CfdOrder.status == OrderStatus.PENDING.value, CfdOrder.competition_id.in_(live))).all())
        held = db.session.execute(select(CfdPosition.id, CfdPosition.participant_id, CfdPosition.version).where(
            CfdPosition.status == PositionStatus.OPEN.value, CfdPosition.competition_id.in_(live))).all()
        holders = {row.participant_id for row in held}
        versions = dict(db.session.execute(select(Participant.id, Participant.version)
                                           .where(Participant.id.in_(select(CfdPosition.participant_id).where(
                                               CfdPosition.status == PositionStatus.OPEN.value,
                                               CfdPosition.competition_id.in_(live))))).all())
        db.session.rollback()
        changed_orders = [oid for oid, stamp in orders.items()
                          if (known := self.orders.get(oid)) is None or known.stamp != stamp]
        changed_positions = [row.id for row in held
                             if (known := self.positions.get(row.id)) is None or known.stamp != row.version]
        accounts = {pid for pid in holders
                    if (known := self.accounts.get(pid)) is None or known.version != versions.get(pid)}
        for order_id in set(self.orders) - set(orders):
            known = self.orders[order_id]
            accounts.add(known.participant_id)
            self._forget_order(order_id)
        open_ids = {row.id for row in held}
        for position_id in set(self.positions) - open_ids:
            accounts.add(self.positions[position_id].participant_id)
            self._forget_position(position_id)
        accounts |= set(self.accounts) - holders  # no longer holding anything (or not LIVE)
        if len(changed_orders) + len(changed_positions) + len(accounts) > FULL_SYNC_ABOVE:
            self._sync()
        elif changed_orders or changed_positions or accounts:
            self._sync(order_ids=changed_orders, position_ids=changed_positions, participant_ids=accounts)

    def _live_competitions(self) -> dict[int, _Competition]:
        rows = db.session.execute(select(Competition.id, Competition.end_at, Competition.stop_out_percent,
                                         Competition.margin_call_percent, Competition.starting_capital,
                                         Competition.max_daily_loss_percent, Competition.max_total_loss_percent,
                                         Competition.breach_action)
                                  .where(Competition.status == CompetitionStatus.LIVE.value,
                                         Competition.kind == CompetitionKind.CFD.value)).all()
        return {row.id: _Competition(row.id, ms(row.end_at), row.stop_out_percent, row.margin_call_percent,
                                     rules.RuleSet.of(row)) for row in rows}

    def _sync(self, *, order_ids: Iterable[int] | None = None, position_ids: Iterable[int] | None = None,
              participant_ids: Iterable[int] | None = None) -> None:
        """Bring the books in line with the database: everything (no arguments), or only the
        given orders / positions / accounts."""
        full = order_ids is None and position_ids is None and participant_ids is None
        self.competitions = self._live_competitions()
        if full or not self.conversion:
            self.conversion = dict(db.session.execute(select(Market.symbol, Market.conversion_symbol)).all())
        live = list(self.competitions)

        # plain rows of the columns the books need, not ORM objects: a reconcile of 100,000
        # resting triggers stays a fraction of a second
        order_query = select(*_ORDER_COLUMNS).where(CfdOrder.status == OrderStatus.PENDING.value,
                                                    CfdOrder.competition_id.in_(live))
        position_query = select(*_POSITION_COLUMNS).where(CfdPosition.status == PositionStatus.OPEN.value,
                                                          CfdPosition.competition_id.in_(live))
        if full:
            order_scope = position_scope = None
            accounts_scope = None
        else:
            order_scope = set(order_ids or ())
            position_scope = set(position_ids or ())
            accounts_scope = set(participant_ids or ())
            for order_id in order_scope:
                known = self.orders.get(order_id)
                if known is not None:
                    accounts_scope.add(known.participant_id)
            for position_id in position_scope:
                known = self.positions.get(position_id)
                if known is not None:
                    accounts_scope.add(known.participant_id)
            # the accounts of the named orders / positions, as the database has them now
            named = set()
            if order_scope:
                named |= set(db.session.scalars(select(CfdOrder.participant_id).where(CfdOrder.id.in_(order_scope))))
            if position_scope:
                named |= set(db.session.scalars(select(CfdPosition.participant_id)
                                                .where(CfdPosition.id.in_(position_scope))))
            accounts_scope |= named
            # a changed account: every order and position of it (a fill opens a position and fills an order)
            order_query = order_query.where(CfdOrder.participant_id.in_(accounts_scope))
            position_query = position_query.where(CfdPosition.participant_id.in_(accounts_scope))

        pending = db.session.execute(order_query).all()
        held = db.session.execute(position_query).all()

        # ---- triggers of orders
        stale_orders = (set(self.orders) if full else
                        {oid for oid, o in self.orders.items() if o.participant_id in accounts_scope})
        for order in pending:
            stale_orders.discard(order.id)
            self._track_order(order)
        for order_id in stale_orders:
            self._forget_order(order_id)

        # ---- triggers of positions, and the accounts holding them
        by_account: dict[int, list] = collections.defaultdict(list)
        stale_positions = (set(self.positions) if full else
                           {pid for pid, p in self.positions.items() if p.participant_id in accounts_scope})
        for position in held:
            stale_positions.discard(position.id)
            self._track_position(position)
            by_account[position.participant_id].append(position)
        for position_id in stale_positions:
            self._forget_position(position_id)

        stale_accounts = set(self.accounts) if full else set(self.accounts) & accounts_scope
        wanted = set(by_account)
        participants = {}
        if wanted:
            holding = (select(CfdPosition.participant_id).where(CfdPosition.status == PositionStatus.OPEN.value,
                                                                 CfdPosition.competition_id.in_(live)))
            if not full:
                holding = holding.where(CfdPosition.participant_id.in_(accounts_scope))
            participants = {p.id: p for p in db.session.execute(select(*_PARTICIPANT_COLUMNS)
                                                                  .where(Participant.id.in_(holding)))}
        for participant_id, account_positions in by_account.items():
            participant = participants.get(participant_id)
            if participant is None:
                continue
            stale_accounts.discard(participant_id)
            self._track_account(participant, account_positions)
        for participant_id in stale_accounts:
            self._forget_account(participant_id)
        db.session.rollback()  # read only

    def _track_order(self, order) -> None:
        if order.price is None:
            return
        sig = (order.symbol, order.side, order.order_type, order.price)
        known = self.orders.get(order.id)
        if known is not None and known.sig == sig:
            known.stamp = order.updated_at
            return
        self.orders[order.id] = _Order(order.id, order.competition_id, order.participant_id, ms(order.created_at),
                                       sig, order.updated_at)
        trigger = order_trigger(order.id, order.symbol, order.side, order.order_type, order.price)
        if self.triggers.get(trigger.key) != trigger:
            self.triggers.add(trigger)

    def _forget_order(self, order_id: int) -> None:
        self.orders.pop(order_id, None)
        self.triggers.remove(("order", order_id))

    def _track_position(self, position) -> None:
        sig = (position.symbol, position.side, position.stop_loss, position.take_profit)
        known = self.positions.get(position.id)
        if known is not None and known.sig == sig:
            known.stamp = position.version
            return
        self.positions[position.id] = _Position(position.id, position.competition_id, position.participant_id,
                                                position.symbol, position.open_tick_id or 0, sig, position.version)
        for kind, level, make in (("sl", position.stop_loss, sl_trigger), ("tp", position.take_profit, tp_trigger)):
            if level is None:
                self.triggers.remove((kind, position.id))
                continue
            trigger = make(position.id, position.symbol, position.side, level)
            if self.triggers.get(trigger.key) != trigger:
                self.triggers.add(trigger)

    def _forget_position(self, position_id: int) -> None:
        position = self.positions.pop(position_id, None)
        self.triggers.remove(("sl", position_id))
        self.triggers.remove(("tp", position_id))
        if position is not None:
            account = self.accounts.get(position.participant_id)
            if account is not None:
                account.positions.discard(position_id)

    def _track_account(self, participant, held: list) -> None:
        competition = self.competitions[participant.competition_id]
        account = self.accounts.get(participant.id)
        if account is None:
            account = self.accounts[participant.id] = _Account(participant.id, participant.competition_id,
                                                               participant.user_id, participant.version)
        elif account.version == participant.version and account.positions == {p.id for p in held}:
            return  # unchanged since the engine last loaded it
        account.version = participant.version
        account.positions = {p.id for p in held}
        account.cash, account.used_margin = float(participant.cash), float(participant.used_margin)
        self.risk.set_account(participant.id, cash=float(participant.cash), used_margin=float(participant.used_margin),
                              stop_out_percent=float(competition.stop_out),
                              margin_call_percent=float(competition.margin_call))
        account.floor_inputs = {"cash": participant.cash, "day_start_balance": participant.day_start_balance,
                                "day_start_day": participant.day_start_day, "topped_up": participant.topped_up}
        self._screen_floor(account)
        sums: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
        for position in held:
            units = float(position.lots * position.contract_size)
            cost = float(position.open_price * position.lots * position.contract_size)
            s = sums[position.symbol]
            if margin.is_long(position.side):
                s[0] += units
                s[1] += cost
            else:
                s[2] += units
                s[3] += cost
        for symbol in account.symbols - set(sums):  # no longer held
            self.risk.set_exposure(participant.id, symbol, long_units=0, long_cost=0, short_units=0, short_cost=0)
        account.symbols = set(sums)
        for symbol, (long_units, long_cost, short_units, short_cost) in sums.items():
            self.risk.set_exposure(participant.id, symbol, long_units=long_units, long_cost=long_cost,
                                   short_units=short_units, short_cost=short_cost)

    def _forget_account(self, participant_id: int) -> None:
        account = self.accounts.pop(participant_id, None)
        self.risk.drop_account(participant_id)
        self.warned.discard(participant_id)
        competition = self.competitions.get(account.competition_id) if account is not None else None
        if competition is not None and competition.rules is not None:
            self.emptied.add(participant_id)

    def _expire_orders(self) -> None:
        """Good-till-date orders whose date passed (by the clock; a tick after the date never
        fills them either)."""
        now = utcnow()
        expired = db.session.execute(
            update(CfdOrder).where(CfdOrder.status == OrderStatus.PENDING.value, CfdOrder.expires_at.is_not(None),
                                   CfdOrder.expires_at <= now)
            .values(status=OrderStatus.EXPIRED.value, status_reason="Expired (good till its date).", done_at=now)
            .returning(CfdOrder.id, CfdOrder.participant_id)).all()
        db.session.commit()
        for order_id, participant_id in expired:
            self._forget_order(order_id)
            self._announce(participant_id, "order_expired", order_id=order_id)

    # ---- watermark and replay -----------------------------------------------------------------

    def _load_watermarks(self) -> None:
        self.saved, self.watermarks = listeners.load_watermarks(CfdEngineState)
        for symbol, tick_id in self.watermarks.items():
            tick = db.session.get(Tick, tick_id) if tick_id else None
            if tick is not None:
                self.last_at[symbol] = At.of_tick(tick)
        db.session.rollback()

    def replay(self) -> int:
        """The recorded ticks after each symbol's watermark, in id order. Returns how many."""
        cursor = self._replay_cursor()
        if cursor is None:
            return 0
        replayed = 0
        while True:
            batch = list(db.session.scalars(select(Tick).where(Tick.id > cursor).order_by(Tick.id)
                                            .limit(REPLAY_BATCH)))
            rows = [TickRow(t.id, t.symbol, t.ts_ms, t.bid, t.ask, t.mid, t.source, t.epoch) for t in batch]
            db.session.rollback()
            for row in rows:
                cursor = row.id
                if row.id > self.watermarks.get(row.symbol, 0):
                    self.process(row)  # EngineBehind propagates: the caller retries later
                    replayed += 1
            if len(rows) < REPLAY_BATCH:
                break
        if replayed:
            log.info("CFD engine replayed %d recorded ticks after its watermark", replayed)
        return replayed

    def _replay_cursor(self) -> int | None:
        """Where the replay starts: before the first tick after its symbol's watermark, over
        the symbols that have one (None: nothing to replay). A symbol with nothing new (its
        latest tick at or below its watermark) does not hold the replay back to an old
        watermark."""
        cursor = None
        for symbol, mark in self.watermarks.items():
            # by id, not time: a new holder's clock may run behind the last one's
            latest = db.session.scalar(select(func.max(Tick.id)).where(Tick.symbol == symbol))
            if latest is None or latest <= mark:
                continue
            first = db.session.scalar(select(func.min(Tick.id)).where(Tick.symbol == symbol, Tick.id > mark))
            if first is not None:
                cursor = first - 1 if cursor is None else min(cursor, first - 1)
        db.session.rollback()
        return cursor

    def _write_marks(self, marks: dict[str, int]) -> None:  # save_watermarks: listeners.TickListener
        _write_watermarks(marks)

    # ---- one tick -----------------------------------------------------------------------------

    def process(self, row: TickRow) -> None:
        """Everything one recorded tick does, in order: the triggers it crosses, then the risk pass."""
        symbol = row.symbol
        before = self.watermarks.get(symbol, 0)
        if row.id <= before:
            return
        at = At.of_tick(row)
        self.last_at[symbol] = at
        if self.rules_day != rules.epoch_day(row.ts_ms):
            self._new_day(rules.epoch_day(row.ts_ms))
        did = False
        crossed = self.triggers.pop_crossed(symbol, row.bid, row.ask)
        for n, trigger in enumerate(crossed):
            try:
                did |= self._run(trigger.key, row, self._execute, trigger, row, at, before)
            except EngineBehind:
                for left in crossed[n:]:  # back in the book; the replay of this tick re-checks each
                    self.triggers.add(left)
                raise
        did |= self._risk_pass(row, at, before)
        self.watermarks[symbol] = row.id
        if did:
            self.save_watermarks()

    def _run(self, key, row: TickRow, action, *args) -> bool:
        """One execution (its own transaction). A failure stops the engine at this tick
        (EngineBehind), unless the same one failed MAX_ATTEMPTS times at this tick: then it is
        set aside, logged, so one bad row cannot stall every other stop."""
        try:
            return bool(action(*args))
        except Exception:
            db.session.rollback()
            attempt = self.failures[(row.id, key)] = self.failures.get((row.id, key), 0) + 1
            if attempt >= MAX_ATTEMPTS:
                log.critical("CFD engine: %r failed %d times at tick %d; set aside until the reconcile",
                             key, attempt, row.id, exc_info=True)
                self.next_reconcile = 0.0
                return False
            log.exception("CFD engine: %r failed at tick %d (attempt %d); catching up from the tick store",
                          key, row.id, attempt)
            raise EngineBehind(f"{key!r} at tick {row.id}") from None
        finally:
            db.session.remove()

    def _hold(self, competition_id: int, row: TickRow) -> bool:
        """The lock order of every CFD write (positions.py): the competition row (shared)
        first, then the account. False (rolled back) when the competition is no longer LIVE
        or this tick is after its end: the end's closer owns what is left."""
        status, end_at = positions.hold_competition(competition_id)
        if status != CompetitionStatus.LIVE.value or row.ts_ms > ms(end_at):
            db.session.rollback()
            return False
        return True

    def _execute(self, trigger: Trigger, row: TickRow, at: At, before: int) -> bool:
        kind, entity_id = trigger.key
        if kind == "order":
            return self._fire_order(entity_id, trigger, row, at, before)
        return self._fire_close(kind, entity_id, trigger, row, at, before)

    def _fire_order(self, order_id: int, trigger: Trigger, row: TickRow, at: At, before: int) -> bool:
        known = self.orders.get(order_id)
        if known is None:
            return False
        competition = self.competitions.get(known.competition_id)
        if competition is None or row.ts_ms > competition.end_ms:
            self._forget_order(order_id)  # the end job cancels it
            return False
        if row.ts_ms < known.since_ms:
            self.triggers.add(trigger)  # a tick from before the order existed
            return False
        if not self._hold(known.competition_id, row):
            self._forget_order(order_id)  # over: the end cancels it
            return False
        positions.lock_account(known.participant_id)
        order = db.session.get(CfdOrder, order_id, populate_existing=True)
        if order is None or order.status != OrderStatus.PENDING.value:
            db.session.rollback()
            self._forget_order(order_id)
            return False
        if order.expires_at is not None and row.ts_ms > ms(order.expires_at):
            db.session.execute(update(CfdOrder).where(CfdOrder.id == order_id,
                                                      CfdOrder.status == OrderStatus.PENDING.value)
                               .values(status=OrderStatus.EXPIRED.value, status_reason="Expired (good till its date).",
                                       done_at=utcnow()))
            participant_id = order.participant_id
            _write_watermarks({row.symbol: before})
            db.session.commit()
            self._forget_order(order_id)
            self._announce(participant_id, "order_expired", order_id=order_id)
            return True
        current = order_trigger(order.id, order.symbol, order.side, order.order_type, order.price)
        if not current.fires_at(row.bid, row.ask):  # moved meanwhile: the database's level counts
            db.session.rollback()
            self.triggers.add(current)
            return False
        position = positions.fill_pending_order(
            order_id, at=at, rule=positions.fill_rule(order.side, order.order_type, order.price, at))
        position_id = position.id if position is not None else None
        participant_id, reason = order.participant_id, order.status_reason
        _write_watermarks({row.symbol: before})
        db.session.commit()
        self.fills += position_id is not None
        self._forget_order(order_id)
        db.session.remove()
        self._sync(participant_ids=[participant_id])
        if position_id is not None:
            self._announce(participant_id, "order_filled", order_id=order_id, position_id=position_id)
        else:
            self._announce(participant_id, "order_rejected", order_id=order_id, reason=reason)
        return True

    def _fire_close(self, kind: str, position_id: int, trigger: Trigger, row: TickRow, at: At, before: int) -> bool:
        known = self.positions.get(position_id)
        if known is None:
            return False
        competition = self.competitions.get(known.competition_id)
        if competition is None or row.ts_ms > competition.end_ms:
            self._forget_position(position_id)
            return False
        if row.id <= known.since_tick_id:
            self.triggers.add(trigger)  # a tick from before the position was opened
            return False
        if not self._hold(known.competition_id, row):
            self._forget_position(position_id)  # over: the end closes it at its own tick
            return False
        positions.lock_account(known.participant_id)
        position = db.session.get(CfdPosition, position_id, populate_existing=True)
        if position is None or position.status != PositionStatus.OPEN.value:
            db.session.rollback()
            self._forget_position(position_id)
            return False
        level = position.stop_loss if kind == "sl" else position.take_profit
        if level is None:
            db.session.rollback()
            return False
        make = sl_trigger if kind == "sl" else tp_trigger
        current = make(position.id, position.symbol, position.side, level)
        if not current.fires_at(row.bid, row.ask):
            db.session.rollback()
            self.triggers.add(current)
            return False
        reason = CloseReason.STOP_LOSS.value if kind == "sl" else CloseReason.TAKE_PROFIT.value
        fill = positions.close_position(position_id, at=at, reason=reason, rule=close_rule(kind, position, level, row))
        participant_id = position.participant_id
        _write_watermarks({row.symbol: before})
        db.session.commit()
        self._forget_position(position_id)
        db.session.remove()
        self._sync(participant_ids=[participant_id])
        if fill is not None:
            self.fills += 1
            self._announce(participant_id, "position_closed", position_id=position_id, reason=reason)
        return fill is not None

    # ---- the rule set (rules.py) --------------------------------------------------------------

    def _screen_floor(self, account: _Account) -> None:
        """The risk book's floor for the account: its highest loss floor not yet breached."""
        competition = self.competitions.get(account.competition_id)
        found = {}
        if competition is not None and competition.rules is not None and account.floor_inputs:
            day = self.rules_day if self.rules_day is not None else rules.epoch_day(self.clock_ms())
            found = {rule: floor for rule, floor in rules.floors(competition.rules, day=day,
                                                                  **account.floor_inputs).items()
                     if rule not in account.breached}
        self.risk.set_floor(account.id, max(found.values()) if found else None)

    def _new_day(self, day: int) -> None:
        """A tick of a new UTC day: every daily-loss floor moves to that day's base."""
        self.rules_day = day
        for account in self.accounts.values():
            if account.floor_inputs:
                self._screen_floor(account)

    def judge_emptied(self) -> None:
        """Accounts that left the book (their last position closed, by the web as well): the
        loss that close realised is judged at the close's own tick, since no later tick visits
        an account that holds nothing."""
        emptied, self.emptied = self.emptied, set()
        for participant_id in sorted(emptied):
            try:
                last = rules.last_close(participant_id)
                if last is not None and last.tick_id is not None:
                    row = TickRow(last.tick_id, last.symbol, last.tick_ts_ms, last.bid, last.ask,
                                  (last.bid + last.ask) / 2, "")
                    self._enforce_rules(participant_id, row, None, last.competition_id)
            except Exception:
                log.exception("CFD engine: could not judge the rules of account %s after its close", participant_id)
                db.session.rollback()
            finally:
                db.session.remove()

    def _enforce_rules(self, participant_id: int, row: TickRow, before: int | None,
                       competition_id: int | None = None) -> bool:
        """The exact check of an account the screen put below its floor (or that a close just
        emptied), at this tick: rules.enforce records each breach once and, on DISQUALIFY,
        closes everything at this tick. `before`: the watermark to write with it (None: a
        check outside the tick loop writes none)."""
        account = self.accounts.get(participant_id)
        competition_id = account.competition_id if account is not None else competition_id
        competition = self.competitions.get(competition_id)
        if competition is None or competition.rules is None or row.ts_ms > competition.end_ms:
            return False
        if not self._hold(competition_id, row):
            return False
        outcome = rules.enforce(participant_id, competition.rules, row, lambda symbol: self._at(symbol, row))
        if not outcome.recorded:
            db.session.rollback()
            if account is not None and outcome.breached:  # recorded before (a flag, a replay): screen no more
                account.breached |= set(outcome.breached)
                self._screen_floor(account)
            return False
        if before is not None:
            _write_watermarks({row.symbol: before})
        db.session.commit()
        db.session.remove()
        if account is not None:
            account.breached |= set(outcome.breached)
        for position_id in outcome.closed:
            self._forget_position(position_id)
        self._sync(participant_ids=[participant_id])
        self._announce(participant_id, "rule_breach", rule=outcome.recorded[0], detail=outcome.detail,
                       disqualified=outcome.disqualified, positions=outcome.closed)
        return True

    # ---- the risk pass ------------------------------------------------------------------------

    def _usd_rate(self, symbol: str, row: TickRow) -> float:
        """The screen's USD/<quote> rate for a tick of `symbol` (mid prices)."""
        conversion = self.conversion.get(symbol)
        if conversion is None:
            return 1.0
        if conversion == symbol:
            return float((row.bid + row.ask) / 2)
        at = self._at(conversion, row)
        return float((at.bid + at.ask) / 2) if at is not None else 1.0

    def _at(self, symbol: str, row: TickRow) -> At | None:
        """The price of `symbol` as of this tick: the engine's latest tick of it, else the
        tick store's latest at or before this tick's time."""
        if symbol == row.symbol:
            return At.of_tick(row)
        at = self.last_at.get(symbol)
        if at is None and self.missing.get(symbol, 0.0) <= self.monotonic():
            tick = ticks.tick_at_or_before(symbol, row.ts_ms)
            if tick is not None:
                at = self.last_at[symbol] = At.of_tick(tick)
            else:  # never recorded: ask the store again in a while, not on every tick
                self.missing[symbol] = self.monotonic() + MISSING_RETRY_S
        return at

    def _risk_pass(self, row: TickRow, at: At, before: int) -> bool:
        result = self.risk.on_tick(row.symbol, float(row.bid), float(row.ask), self._usd_rate(row.symbol, row))
        if not (result.negative or result.stop_out or result.margin_call or result.floor):
            return False
        did = False
        for participant_id in result.floor:  # before a stop-out: the breach is the first thing this tick did
            did |= self._run(("rules", participant_id), row, self._enforce_rules, participant_id, row, before)
        for participant_id in result.negative + result.stop_out:
            did |= self._run(("stop_out", participant_id), row, self._stop_out, participant_id, row, at, before)
        for participant_id in result.margin_call:
            if participant_id not in self.warned:
                self.warned.add(participant_id)
                self._announce(participant_id, "margin_call")
        return did

    def _below(self, participant_id: int, which: str) -> bool:
        account = self.accounts.get(participant_id)
        competition = self.competitions.get(account.competition_id) if account else None
        level = self.risk.margin_level(participant_id)
        if competition is None or level is None:
            return False
        return level < float(competition.margin_call if which == "margin_call" else competition.stop_out)

    def _stop_out(self, participant_id: int, row: TickRow, at: At, before: int) -> bool:
        """The exact check of a screened account, and the closes it calls for, at this tick."""
        account = self.accounts.get(participant_id)
        competition = self.competitions.get(account.competition_id) if account else None
        if competition is None or row.ts_ms > competition.end_ms:
            return False
        if not self._hold(account.competition_id, row):
            return False
        participant = positions.lock_account(participant_id)
        # positions opened after this tick (a replay) did not exist at it
        held = [p for p in positions.open_positions(participant_id) if (p.open_tick_id or 0) <= row.id]
        prices: dict[str, At | None] = {}

        def price_of(symbol: str) -> At | None:
            if symbol not in prices:
                prices[symbol] = self._at(symbol, row)
            return prices[symbol]

        holdings = [positions.holding(p, price_of) for p in held]
        plan = margin.stop_out_plan(participant.cash, holdings, competition.stop_out)
        if not plan.close:
            db.session.rollback()
            return False
        reason = (CloseReason.NEGATIVE_BALANCE if plan.negative_balance else CloseReason.STOP_OUT).value
        by_id = {p.id: p for p in held}
        crossed = margin.figures(participant.cash, holdings)  # exact, at this tick
        if plan.negative_balance:
            rule = f"negative balance: equity {crossed.equity} < 0 at tick {row.id}, everything closed"
        else:
            rule = (f"stop-out: margin level {crossed.margin_level}% < {competition.stop_out}% at tick {row.id}, "
                    f"largest loss first")
        for position_id in plan.close:
            position_at = price_of(by_id[position_id].symbol)
            if position_at is None:  # no recorded price of its market at all: at its own open
                position_at = At(by_id[position_id].open_tick_id, row.ts_ms, by_id[position_id].open_price,
                                 by_id[position_id].open_price)
            positions.close_position(position_id, at=position_at, reason=reason, rule=rule)
        if plan.negative_balance:
            db.session.execute(update(Participant).where(Participant.id == participant_id)
                               .values(cash=margin.ZERO, equity=margin.ZERO))
        _write_watermarks({row.symbol: before})
        db.session.commit()
        db.session.remove()
        for position_id in plan.close:
            self._forget_position(position_id)
        self._sync(participant_ids=[participant_id])
        self._announce(participant_id, "negative_balance" if plan.negative_balance else "stop_out",
                       positions=list(plan.close))
        return True

    # ---- the standings and the trader's screen ------------------------------------------------

    def write_equity(self, now: float) -> None:
        """Participant.equity of every account at risk whose equity moved, at most once per
        EQUITY_EVERY_S per account, only if the account did not change since the engine
        loaded it (its version): never an old figure over a newer one (a rebuy)."""
        rows = []
        for participant_id, account in self.accounts.items():
            if now < account.equity_due or participant_id not in self.risk:
                continue
            equity = margin.cents(Decimal(repr(self.risk.equity(participant_id))))
            if equity == account.equity_written:
                continue
            account.equity_written = equity
            account.equity_due = now + EQUITY_EVERY_S
            rows.append({"pid": participant_id, "v": account.version, "equity": equity,
                         "competition_id": account.competition_id})
        if not rows:
            return
        at_ms = self.clock_ms()
        by_competition: dict[int, list] = collections.defaultdict(list)
        versions: dict[int, dict[int, int]] = collections.defaultdict(dict)
        for row in rows:
            competition_id = row.pop("competition_id")
            by_competition[competition_id].append((row["pid"], row["equity"], at_ms))
            versions[competition_id][row["pid"]] = row["v"]
        for competition_id, updates in by_competition.items():
            leaderboard.note_equity(competition_id, updates, versions[competition_id])  # ranked at the next publish
        table = Participant.__table__
        try:
            from sqlalchemy import bindparam

            db.session.execute(update(table).where(table.c.id == bindparam("pid"), table.c.version == bindparam("v"))
                               .values(equity=bindparam("equity")).execution_options(synchronize_session=False),
                               rows)
            db.session.commit()
        except Exception:
            log.exception("CFD engine: could not write the equity of %d accounts", len(rows))
            db.session.rollback()
        finally:
            db.session.remove()

    def publish_boards(self, now: float) -> None:
        """Re-rank the live competitions (leaderboard.py), once a second, here: only the
        process holding the price authority publishes. The accounts at risk are noted by
        write_equity; everyone else's equity is read from the database."""
        self.next_publish = now + leaderboard.PUBLISH_SECONDS
        try:
            leaderboard.publish_boards(self.app, tracked=set(self.accounts))
        except Exception:
            log.exception("CFD engine: could not publish the leaderboards")
            db.session.rollback()

    MESSAGES = {
        "margin_call": "Margin call: your margin level is below {level}%. Add no risk; close or reduce positions.",
        "stop_out": "Stop-out: your margin level fell below {level}%; positions were closed, largest loss first.",
        "negative_balance": "A price gap took your equity below 0: every position was closed and the account "
                            "set to 0.",
        "order_filled": "Your pending order was filled.",
        "position_closed": "A position was closed by its stop-loss or take-profit.",
        "order_rejected": "Your pending order was triggered but not filled: not enough free margin then.",
        "order_expired": "Your pending order expired (good till its date).",
        "rule_breach": "You broke a rule of this competition (see its Rules).",
    }

    def _announce(self, participant_id: int, event: str, **extra) -> None:
        """A ``cfd_account`` frame to the trader's room (what the terminal renders): the event,
        the account's figures as the engine has them (balance, used margin, equity, free
        margin, margin level), ``margin_call`` while in the zone, and ``changed`` when orders
        or positions changed (the terminal reloads its tables)."""
        account = self.accounts.get(participant_id)
        if account is None:
            user_id, competition_id, cash = db.session.execute(
                select(Participant.user_id, Participant.competition_id, Participant.cash)
                .where(Participant.id == participant_id)).one()
            db.session.rollback()
            figures = {"balance": float(cash), "used_margin": 0.0, "equity": float(cash), "free_margin": float(cash),
                       "margin_level": None}
        else:
            user_id, competition_id = account.user_id, account.competition_id
            level = self.risk.margin_level(participant_id)
            figures = {"balance": round(account.cash, 2), "used_margin": round(account.used_margin, 2),
                       "equity": round(self.risk.equity(participant_id), 2),
                       "free_margin": round(self.risk.free_margin(participant_id), 2),
                       "margin_level": None if level is None else round(level, 2)}
        competition = self.competitions.get(competition_id)
        level_text = ""
        if competition is not None:
            level_text = competition.margin_call if event == "margin_call" else competition.stop_out
        payload = {"event": event, "competition_id": competition_id, "participant_id": participant_id,
                   "figures": figures, "margin_call": event == "margin_call",
                   "changed": event != "margin_call",
                   "message": self.MESSAGES.get(event, "").format(level=level_text), **extra}
        emit(user_id, payload)


# ---- helpers ---------------------------------------------------------------------------------

def close_rule(kind: str, position: CfdPosition, level: Decimal, row: TickRow) -> str:
    long = margin.is_long(position.side)
    side, price = ("bid", row.bid) if long else ("ask", row.ask)
    if kind == "sl":
        op = "<=" if long else ">="
        name = "stop-loss"
    else:
        op = ">=" if long else "<="
        name = "take-profit"
    return f"{'long' if long else 'short'} {name}: {side} {price} {op} {_price(level, price)}"


def _write_watermarks(marks: dict[str, int]) -> None:
    """Upsert CfdEngineState rows in the session's transaction (never lowering one)."""
    listeners.write_watermarks(CfdEngineState.__table__, marks)


def emit(user_id: int, payload: dict) -> None:
    try:
        from ..core.events import user_room

        socketio.emit(ACCOUNT_EVENT, payload, to=user_room(user_id))
    except Exception:  # noqa: BLE001 - a screen update never undoes a fill
        log.exception("could not emit %s to user %s", ACCOUNT_EVENT, user_id)


# ---- intake from the web ----------------------------------------------------------------------

def notify(kind: str, ident: int) -> None:
    """Call after committing a change the engine must know of: kind "order", "position",
    "account" (a participant id) or "competition". In-process when the engine runs here;
    over Redis when REDIS_URL is set (the feed process listens)."""
    listeners.send_notice("cfd_engine", NOTICE_CHANNEL, (kind, ident), [kind, int(ident)],
                          what=f"CFD engine of {kind} {ident}", log=log)


# ---- competition end and rebuy ----------------------------------------------------------------

def _recorded_at(symbol: str, ts_ms: int) -> At | None:
    tick = ticks.tick_at_or_before(symbol, ts_ms)
    return At.of_tick(tick) if tick is not None else None


def close_competition(competition: Competition, end_at: datetime) -> None:
    """The end of a competition (lifecycle.close_all_at, in its transaction): cancel the open
    orders and close every open position at the recorded tick at or before `end_at` (longs
    at the bid, shorts at the ask), never at the price of when the job runs. An account the
    closes leave below 0 is set to 0 (negative-balance protection)."""
    end_ms = ms(end_at)
    positions.cancel_open_orders(competition.id, "The competition ended.")
    cache: dict[str, At | None] = {}

    def prices(symbol: str) -> At | None:
        if symbol not in cache:
            cache[symbol] = _recorded_at(symbol, end_ms)
        return cache[symbol]

    positions.close_all_at(competition.id, prices, CloseReason.COMPETITION_END.value)
    # close_position left each closed account's equity at its cash; one left below 0 is set to 0
    # (flushed first, and the session's copies kept in step: no stale figure is written after)
    db.session.flush()
    db.session.execute(update(Participant).where(Participant.competition_id == competition.id, Participant.cash < 0)
                       .values(cash=margin.ZERO, equity=margin.ZERO).execution_options(synchronize_session="fetch"))
    notify("competition", competition.id)


def close_for_rebuy(participant: Participant) -> None:
    """Before a rebuy resets the account (service.rebuy, in its transaction): cancel the
    participant's pending orders and close their positions at the latest recorded prices."""
    from ..errors import Conflict

    positions.lock_account(participant.id)
    now = utcnow()
    db.session.execute(update(CfdOrder).where(CfdOrder.participant_id == participant.id,
                                              CfdOrder.status == OrderStatus.PENDING.value)
                       .values(status=OrderStatus.CANCELLED.value, status_reason="Cancelled by the rebuy.",
                               done_at=now))
    held = list(db.session.scalars(select(CfdPosition).where(CfdPosition.participant_id == participant.id,
                                                             CfdPosition.status == PositionStatus.OPEN.value)
                                   .order_by(CfdPosition.id)))
    for position in held:
        at = _recorded_at(position.symbol, LATEST)
        if at is None:
            raise Conflict(f"No recorded price for {position.symbol} to close your position at; try again shortly.")
        positions.close_position(position.id, at=at, reason=CloseReason.REBUY.value,
                                 rule="rebuy: closed at the latest recorded price")
    notify("account", participant.id)


def init_app(app: Flask) -> None:
    engine = CfdEngine(app)
    app.extensions["cfd_engine"] = engine
    app.extensions.setdefault("tick_listeners", []).append(engine)
    app.extensions.setdefault("cfd_listeners", []).append(engine_listener)
    app.extensions.setdefault("competition_closers", []).append(close_competition)
    app.extensions.setdefault("competition_rebuy_closers", []).append(close_for_rebuy)


def engine_listener(kind: str, ident: int) -> None:
    """What orders.py calls after a commit (app.extensions['cfd_listeners'])."""
    notify(kind, ident)


__all__ = ["CfdEngine", "close_competition", "close_for_rebuy", "notify", "init_app"]
