"""Settling rise/fall trades from recorded ticks, exactly once, in set-based batches.

Rules (shown to traders on the trade page and on each trade's proof):
- the exit price is the MID of the tick recorded at or before the trade's expiry (a tick
  exactly at ``expires_ms`` counts);
- a trade is settled only once that price is final: once the tick store's flushed
  watermark (moved by the authority with each batch it writes) has reached the expiry.
  Ticks still in the feed's write buffer, or in a batch that failed and will be retried,
  are not final; the trade waits for them, however long the store is unreachable;
- if the authority lost ticks at or before the expiry that would have come after the
  exit tick (a recorded TickGap: a full buffer, a holder that lost the authority), no
  recorded price is the price at expiry: TIE, stake refunded (rule PRICE_GAP);
- UP wins when exit > entry, DOWN wins when exit < entry, equal prices are a TIE;
- no tick recorded after the entry quote up to the expiry is a TIE (rule NO_NEW_TICK);
- WIN pays the frozen potential payout, TIE returns the stake, LOSS pays nothing.

Exactly once: the status flip is the gate. Each batch flips trades with
``UPDATE ... WHERE status = 'OPEN' RETURNING id`` and credits only the rows that statement
returned, in the same transaction. A concurrent settler's UPDATE waits for the first
one's row locks, re-checks ``status = 'OPEN'`` after its commit (PostgreSQL READ
COMMITTED; SQLite has one writer) and so returns, and pays, nothing. The due rows are not
locked when read (no SELECT ... FOR UPDATE): that would write a lock on every row of a
10,000-trade burst for no extra safety.

A trade's payout goes back to the account its stake came from (``participant_id``: None
= the user's demo balance, else that competition account, whose cash and equity move
together: see competitions/rise_fall.py).

Lock order (the one order everywhere a transaction locks accounts and trades: placement,
demo reset, settlement): the USERS rows first, in ascending id, then the competition
PARTICIPANTS rows, in ascending id, then their TRADES rows.
Placement debits the user before it writes the trade; a demo reset locks the user before
it cancels the trades; so a batch locks the rows of every user it may pay before it flips
a single trade. Flipping first and crediting after would take them in the opposite order,
and a reset of one of those users at the same moment would deadlock with the batch.
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from flask import Flask, current_app
from sqlalchemy import BigInteger, bindparam, column, select, update, values

from .. import jobs, metrics
from ..auth.models import User
from ..competitions.models import Participant
from ..core.events import user_room
from ..extensions import db, socketio
from ..market.models import Tick
from ..market.quotes import now_ms
from ..market.service import market_name
from ..market.ticks import flushed_watermark, gaps_overlapping, tick_at_or_before
from ..message_queue import one_round_trip
from ..types import Money, utcnow
from .models import Direction, SettlementRule, Trade, TradeResult, TradeStatus

log = logging.getLogger(__name__)

ZERO = Decimal("0.00")
ID_CHUNK = 1000
# Expiries closer together than this share one window of ticks (one query); wider gaps
# (recovery after a long outage) get their own window so no huge tick range is loaded.
TICK_WINDOW_MS = 5000
MAX_BATCHES_PER_CYCLE = 500
ANNOUNCE_INLINE_MAX = 200


@dataclass(frozen=True)
class SettledTrade:
    id: int
    user_id: int
    symbol: str
    direction: str
    stake: Decimal
    result: str
    rule: str
    payout: Decimal
    entry_price: Decimal
    exit_price: Decimal | None
    exit_tick_id: int | None
    exit_ts_ms: int | None
    expires_ms: int
    participant_id: int | None = None  # the competition account paid, None = the demo balance

    def as_event(self, name: str | None = None) -> dict:
        """The trader's event; ``name``: the market's name when the caller has it."""
        return {
            "id": self.id, "symbol": self.symbol, "market_name": market_name(self.symbol) if name is None else name,
            "direction": self.direction, "stake": str(self.stake),
            "result": self.result, "rule": self.rule, "payout": str(self.payout),
            "profit": str(self.payout - self.stake), "entry_price": str(self.entry_price),
            "exit_price": None if self.exit_price is None else str(self.exit_price),
            "exit_tick_id": self.exit_tick_id, "exit_ts_ms": self.exit_ts_ms, "expires_ms": self.expires_ms,
        }


def decide(direction: str, entry_price: Decimal, entry_ts_ms: int, exit_tick: Tick | None,
           across_gap: bool = False) -> tuple[str, str]:
    """(result, rule) for one trade, given the tick at or before its expiry, and whether
    ticks that would have come after that one, by the expiry, were lost."""
    if across_gap:
        return TradeResult.TIE.value, SettlementRule.PRICE_GAP.value
    if exit_tick is None or exit_tick.ts_ms <= entry_ts_ms:
        return TradeResult.TIE.value, SettlementRule.NO_NEW_TICK.value
    if exit_tick.mid == entry_price:
        return TradeResult.TIE.value, SettlementRule.COMPARE.value
    went_up = exit_tick.mid > entry_price
    won = went_up if direction == Direction.UP.value else not went_up
    return (TradeResult.WIN.value if won else TradeResult.LOSS.value), SettlementRule.COMPARE.value


def exit_ticks(symbol: str, expiries: list[int]) -> dict[int, Tick | None]:
    """tick_at_or_before(symbol, e) for every distinct expiry e, with one lookup plus one
    range query per window of close expiries instead of one query per expiry."""
    found: dict[int, Tick | None] = {}
    expiries = sorted(set(expiries))
    start = 0
    while start < len(expiries):
        end = start
        while end + 1 < len(expiries) and expiries[end + 1] - expiries[start] <= TICK_WINDOW_MS:
            end += 1
        first, last = expiries[start], expiries[end]
        ticks: list[Tick] = []
        base = tick_at_or_before(symbol, first)
        if base is not None:
            ticks.append(base)
        if last > first:
            ticks.extend(db.session.scalars(
                select(Tick).where(Tick.symbol == symbol, Tick.ts_ms > first, Tick.ts_ms <= last)
                .order_by(Tick.ts_ms, Tick.id)
            ))
        times = [tick.ts_ms for tick in ticks]
        for expiry in expiries[start:end + 1]:
            index = bisect.bisect_right(times, expiry) - 1
            found[expiry] = ticks[index] if index >= 0 else None
        start = end + 1
    return found


def settle_due_trades(symbol: str, up_to_ms: int, *, announce_later: bool = True) -> list[SettledTrade]:
    """Settle every OPEN trade of ``symbol`` that expired at or before ``up_to_ms`` and
    whose exit price is final. Safe to run concurrently and to repeat. ``announce_later``:
    a burst's results may go out in a background task (not in an RQ job, whose process
    ends with it)."""
    try:
        settled, balances = settle_in_transaction(symbol, min(up_to_ms, now_ms()))
        if not settled:
            db.session.rollback()
            return []
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    metrics.settled(settled, now_ms())
    if announce_later and len(settled) > ANNOUNCE_INLINE_MAX:
        # A burst: let the clock move on to the next batch while the results go out, in
        # this app's context (an event names the market).
        socketio.start_background_task(_announce_in, current_app._get_current_object(), settled, balances)
    else:
        _announce(settled, balances)
    return settled


def settle_in_transaction(symbol: str, up_to_ms: int, *where) -> tuple[list[SettledTrade], dict]:
    """The settlement of settle_due_trades in the caller's transaction (no commit, no
    announcement): every OPEN trade of ``symbol`` (and ``where``) expired at or before
    ``up_to_ms`` whose exit price is final. Returns the trades settled here and the new
    balances of their accounts (see _credit)."""
    due = (
        select(Trade.id, Trade.user_id, Trade.participant_id, Trade.direction, Trade.stake, Trade.potential_payout,
               Trade.entry_price, Trade.entry_ts_ms, Trade.expires_ms)
        .where(Trade.status == TradeStatus.OPEN.value, Trade.symbol == symbol, Trade.expires_ms <= up_to_ms, *where)
        .order_by(Trade.id)
    )
    rows = db.session.execute(due).all()
    if not rows:
        return [], {}
    watermark = flushed_watermark()
    final = [row for row in rows if watermark is not None and row.expires_ms <= watermark]
    if not final:
        return [], {}
    ticks = exit_ticks(symbol, [row.expires_ms for row in final])
    since = {row.id: max(row.entry_ts_ms, ticks[row.expires_ms].ts_ms if ticks[row.expires_ms] else row.entry_ts_ms)
             for row in final}
    gaps = gaps_overlapping(symbol, min(since.values()) + 1, max(row.expires_ms for row in final))

    groups: dict[tuple[str, str, int | None], list] = defaultdict(list)
    for row in final:
        tick = ticks[row.expires_ms]
        across_gap = any(gap.from_ms <= row.expires_ms and gap.to_ms > since[row.id] for gap in gaps)
        result, rule = decide(row.direction, row.entry_price, row.entry_ts_ms, tick, across_gap)
        shown_tick = tick if rule == SettlementRule.COMPARE.value else None
        groups[(result, rule, shown_tick.id if shown_tick else None)].append((row, shown_tick))

    _lock_accounts(User.__table__, sorted({row.user_id for row in final if row.participant_id is None}))
    _lock_accounts(Participant.__table__, sorted({row.participant_id for row in final if row.participant_id}))
    settled = _flip_and_collect(symbol, groups)
    return settled, _credit(settled)


def _lock_accounts(table, ids: list[int]) -> None:
    """Row-lock the batch's accounts, in id order, before any of their trades (the lock
    order above). FOR NO KEY UPDATE, the lock the credit's UPDATE takes anyway: it does not
    block inserts that merely reference the row. SQLite has no row locks (one writer)."""
    if db.engine.dialect.name == "sqlite":
        return
    for offset in range(0, len(ids), ID_CHUNK):
        db.session.execute(select(table.c.id).where(table.c.id.in_(ids[offset:offset + ID_CHUNK]))
                           .order_by(table.c.id).with_for_update(key_share=True))


def _flip_and_collect(symbol: str, groups: dict) -> list[SettledTrade]:
    """One UPDATE per (result, exit tick) group; only rows still OPEN are flipped and
    returned, so a trade another settler got first is neither flipped nor paid here."""
    trades = Trade.__table__
    payout_column = {
        TradeResult.WIN.value: trades.c.potential_payout,
        TradeResult.TIE.value: trades.c.stake,
        TradeResult.LOSS.value: ZERO,
    }
    payout_of = {
        TradeResult.WIN.value: lambda row: row.potential_payout,
        TradeResult.TIE.value: lambda row: row.stake,
        TradeResult.LOSS.value: lambda row: ZERO,
    }
    settled_at = utcnow()
    settled: list[SettledTrade] = []
    for (result, rule, _tick_id), members in groups.items():
        tick = members[0][1]
        by_id = {row.id: row for row, _ in members}
        ids = list(by_id)
        for offset in range(0, len(ids), ID_CHUNK):
            chunk = ids[offset:offset + ID_CHUNK]
            flipped = db.session.execute(
                update(trades)
                .where(trades.c.id.in_(chunk), trades.c.status == TradeStatus.OPEN.value)
                .values(status=TradeStatus.SETTLED.value, result=result, rule=rule, payout=payout_column[result],
                        exit_price=tick.mid if tick else None, exit_tick_id=tick.id if tick else None,
                        exit_ts_ms=tick.ts_ms if tick else None, settled_at=settled_at)
                .returning(trades.c.id)
            ).scalars().all()
            for trade_id in flipped:
                row = by_id[trade_id]
                payout = payout_of[result](row)
                settled.append(SettledTrade(
                    id=trade_id, user_id=row.user_id, participant_id=row.participant_id, symbol=symbol, direction=row.direction, stake=row.stake,
                    result=result, rule=rule, payout=payout, entry_price=row.entry_price,
                    exit_price=tick.mid if tick else None, exit_tick_id=tick.id if tick else None,
                    exit_ts_ms=tick.ts_ms if tick else None, expires_ms=row.expires_ms,
                ))
    return settled


def _credit(settled: list[SettledTrade]) -> dict[str, dict[int, Decimal]]:
    """Credit each account once with the sum of its payouts: {"demo": {user id: new demo
    balance}, "competition": {participant id: new cash}} for every account with a settled
    trade. The rows are already locked (_lock_accounts)."""
    demo: dict[int, Decimal] = defaultdict(lambda: ZERO)
    competition: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for trade in settled:
        if trade.participant_id is None:
            demo[trade.user_id] += trade.payout
        else:
            competition[trade.participant_id] += trade.payout
    users, participants = User.__table__, Participant.__table__
    # Rise/fall competition accounts: equity = cash (see competitions/rise_fall.py).
    return {"demo": _credit_rows(users, demo, {"demo_balance": users.c.demo_balance}),
            "competition": _credit_rows(participants, competition,
                                        {"cash": participants.c.cash, "equity": participants.c.equity})}


def _credit_rows(table, owed: dict[int, Decimal], columns: dict) -> dict[int, Decimal]:
    """Add each row's amount to every column of ``columns``; returns {id: first column}."""
    if not owed:
        return {}
    first = next(iter(columns.values()))
    credits = [(row_id, amount) for row_id, amount in sorted(owed.items()) if amount > 0]
    balances: dict[int, Decimal] = {}
    if credits and db.engine.dialect.name == "postgresql":
        # One statement for the whole batch: UPDATE ... FROM (VALUES ...) RETURNING.
        for offset in range(0, len(credits), ID_CHUNK):
            amounts = values(column("uid", BigInteger), column("amount", Money()), name="credit").data(
                credits[offset:offset + ID_CHUNK])
            balances.update(db.session.execute(
                update(table).where(table.c.id == amounts.c.uid)
                .values({name: col + amounts.c.amount for name, col in columns.items()})
                .returning(table.c.id, first)
            ).all())
    elif credits:
        db.session.execute(
            update(table).where(table.c.id == bindparam("uid"))
            .values({name: col + bindparam("amount", type_=Money()) for name, col in columns.items()}),
            [{"uid": uid, "amount": amount} for uid, amount in credits],
        )
    row_ids = sorted(uid for uid in owed if uid not in balances)
    for offset in range(0, len(row_ids), ID_CHUNK):
        chunk = row_ids[offset:offset + ID_CHUNK]
        balances.update(db.session.execute(select(table.c.id, first).where(table.c.id.in_(chunk))).all())
    return balances


def _announce_in(app: Flask, settled: list[SettledTrade], balances: dict[str, dict[int, Decimal]]) -> None:
    with app.app_context():
        _announce(settled, balances)


def _announce(settled: list[SettledTrade], balances: dict[str, dict[int, Decimal]]) -> None:
    """After the commit: the trader sees the result and the new balance live (a
    competition account's new cash comes with the refreshed trade panel)."""
    try:
        # Once per market, not per trade: each look-up can be a Redis round trip.
        names = {symbol: market_name(symbol) for symbol in {trade.symbol for trade in settled}}
        with one_round_trip():
            for trade in settled:
                socketio.emit("trade_settled", trade.as_event(names[trade.symbol]), to=user_room(trade.user_id))
            for user_id, balance in balances["demo"].items():
                socketio.emit("balance", {"demo_balance": str(balance)}, to=user_room(user_id))
    except Exception:
        log.exception("settled %d trades but could not announce them", len(settled))


# ---- the settlement clock ---------------------------------------------------------------

def due_batches(now: int | None = None, limit: int = MAX_BATCHES_PER_CYCLE) -> list[tuple[str, int]]:
    """(symbol, second) pairs with OPEN trades expired by ``now`` and final (the store's
    watermark has passed them), oldest first: no job is queued for a trade that must wait."""
    now = now_ms() if now is None else now
    watermark = flushed_watermark()
    db.session.rollback()
    if watermark is None:
        return []
    now = min(now, watermark)
    second = Trade.expires_ms // 1000
    query = (
        select(Trade.symbol, second)
        .where(Trade.status == TradeStatus.OPEN.value, Trade.expires_ms <= now)
        .group_by(Trade.symbol, second)
        .order_by(second, Trade.symbol)
        .limit(limit)
    )
    rows = db.session.execute(query).all()
    db.session.rollback()
    return [(symbol, int(sec)) for symbol, sec in rows]


@jobs.job
def settle_batch(symbol: str, second: int) -> int:
    """RQ entry point: one job per (symbol, second), never per trade. Its results go out
    before it returns: a task left behind would die with the job's process."""
    return len(settle_due_trades(symbol, second * 1000 + 999, announce_later=False))


def batch_job_id(symbol: str, second: int) -> str:
    # RQ ids allow letters, digits, "_" and "-" only.
    safe = "".join(c if c.isalnum() or c == "_" else "_" for c in symbol)
    return f"binary-settle-{safe}-{second}"


def run_clock_cycle(now: int | None = None) -> int:
    """Settle (or, with RQ, enqueue) every due batch. Returns the number of batches."""
    batches = due_batches(now)
    use_rq = current_app.config["JOBS_MODE"] == "rq"
    for symbol, second in batches:
        if use_rq:
            jobs.enqueue(settle_batch, symbol, second, job_id=batch_job_id(symbol, second))
        else:
            settle_due_trades(symbol, second * 1000 + 999)
    return len(batches)


def settle_overdue() -> int:
    """Crash recovery: settle everything that expired while nothing was running, each
    trade at the tick recorded at its own expiry. Returns the number of trades settled."""
    total = 0
    while True:
        batches = due_batches()
        settled = 0
        for symbol, second in batches:
            settled += len(settle_due_trades(symbol, second * 1000 + 999))
        total += settled
        if len(batches) < MAX_BATCHES_PER_CYCLE or not settled:
            return total


def nudge(app: Flask) -> threading.Event:
    """Set by the price authority after each batch of ticks it writes (a tick listener, see
    init_app): the flushed watermark has just moved, so trades may have become due. The clock
    of the same process then looks at once instead of at its next interval: a lone trade's
    settlement no longer waits up to SETTLEMENT_INTERVAL_SECONDS on top of the flush."""
    return app.extensions.setdefault("settlement_nudge", threading.Event())


def nudge_after_flush(rows) -> None:
    """The tick listener: cheap (it runs in the feed loop); the clock does the work."""
    nudge(current_app).set()


def wait_for_due(app: Flask, interval: float) -> None:
    """The clock's pause: until the next flush of this process's authority, at most `interval`."""
    woken = nudge(app)
    woken.wait(interval)
    woken.clear()


def settlement_clock(app: Flask) -> None:
    """The background service: recover, then look for due batches after every batch of
    ticks the authority writes in this process (`nudge`), and every interval regardless
    (the authority may be another process)."""
    interval = app.config.get("SETTLEMENT_INTERVAL_SECONDS", 0.2)
    with app.app_context():
        try:
            recovered = settle_overdue() if app.config["JOBS_MODE"] != "rq" else run_clock_cycle()
            log.info("settlement clock started (%s overdue handled)", recovered)
        except Exception:
            log.exception("settlement recovery failed; the clock will retry")
        finally:
            db.session.remove()
    while True:
        wait_for_due(app, interval)
        with app.app_context():
            try:
                run_clock_cycle()
            except Exception:
                # A failed batch stays OPEN and is retried on the next cycle.
                log.exception("settlement cycle failed")
            finally:
                db.session.remove()
