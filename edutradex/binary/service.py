"""Placing rise/fall trades, and reading them back (open trades, history, stats).

The rules a trader is shown on the trade page (templates/binary/_rules.html) are the ones
implemented here and in settlement.py:
- entry price = the MID of the authority's latest quote when the server receives the
  request (its tick id and time are recorded); the exit price is the MID of the tick
  recorded at or before expiry. Both sides use the same price, so the spread is never
  charged twice and UP and DOWN are symmetric;
- that quote must be at most ENTRY_MAX_QUOTE_AGE_MS old when the request is received, or
  the entry is refused ("prices are updating"): an older price would be a free option;
- the payout % is frozen at placement; potential payout = stake * (1 + payout%/100),
  rounded half-even to cents (POTENTIAL_PAYOUT_ROUNDING);
- expiry = server time at receipt + duration.

A trade names its account (``Trade.participant_id``): the demo balance (None), or a
RISE_FALL competition's account (competitions/rise_fall.py builds that StakeAccount with
its own rules: live, allowed markets, expiry within the contest). The engine is the same
for both: one transaction, conditional debit, idempotency key, settlement.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Protocol

from flask import current_app
from sqlalchemy import Select, case, func, inspect, select, type_coerce, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from ..auth.models import User
from ..errors import DomainError, InvalidFields, NotFound
from ..extensions import db
from ..market.clock import check_clock_skew
from ..market.hot import placement_reads
from ..market.models import Market
from ..market.quotes import now_ms
from ..market.service import STAKE_LIMIT_CEILING, market_snapshot
from ..parsing import parse_decimal, parse_iso_date, within_days
from ..settings import get_setting
from ..types import Money, utcnow
from .models import Direction, SettlementRule, Trade, TradeResult, TradeStatus

CENT = Decimal("0.01")
POTENTIAL_PAYOUT_ROUNDING = ROUND_HALF_EVEN
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class TradeError(DomainError):
    pass


def potential_payout(stake: Decimal, payout_percent: Decimal) -> Decimal:
    """What a winning trade pays back (stake included), half-even to the cent."""
    return (stake * (1 + payout_percent / 100)).quantize(CENT, rounding=POTENTIAL_PAYOUT_ROUNDING)


def parse_stake(raw: str | Decimal | None) -> Decimal:
    """A positive amount with at most 2 decimal places; the market's own limits come later."""
    return parse_decimal(raw, "Stake", places=2, minimum=Decimal(0), above_minimum=True, maximum=STAKE_LIMIT_CEILING,
                         error=TradeError)


def parse_direction(raw: str | None) -> Direction:
    try:
        return Direction((raw or "").strip().upper())
    except ValueError:
        raise TradeError("Choose UP or DOWN.") from None


def parse_duration(raw: str | int | None, allowed: list[int]) -> int:
    try:
        duration = int(str(raw).strip())
    except (TypeError, ValueError):
        raise TradeError("Choose a duration.", field="duration") from None
    if duration not in allowed:
        raise TradeError(f"A duration of {duration} seconds is not offered. Choose one of the listed durations.",
                         field="duration")
    return duration


def tradable_market(symbol: str) -> Market:
    market = market_snapshot((symbol or "").strip().upper())
    if market is None:
        raise TradeError(f"There is no market called {symbol!r}.", status_code=404)
    if not market.active:
        raise TradeError(f"{market.name} is closed for trading right now.", status_code=409)
    return market


def stake_within_limits(market: Market, raw: str | Decimal | None) -> Decimal:
    """The stake, parsed and within the market's limits; every refusal names the stake field."""
    try:
        amount = parse_stake(raw)
    except DomainError as exc:
        raise TradeError(exc.message, status_code=exc.status_code, field="stake") from None
    if not market.min_stake <= amount <= market.max_stake:
        raise TradeError(f"The stake must be from {market.min_stake:,.2f} to {market.max_stake:,.2f} on {market.name}.",
                         field="stake")
    return amount


def existing_trade(user_id: int, idempotency_key: str) -> Trade | None:
    return db.session.scalar(select(Trade).where(Trade.user_id == user_id, Trade.idempotency_key == idempotency_key))


class StakeAccount(Protocol):
    """Where a stake comes from and the payout goes back to (settlement.py credits it)."""

    participant_id: int | None

    def admit(self, market: Market, expires_ms: int) -> None:
        """In the placement's transaction, before the debit: the account's own rules
        (may lock rows that must come before the account's own row); raises DomainError."""

    def debit(self, amount: Decimal) -> None:
        """One conditional UPDATE (no overdraft under concurrency); raises DomainError."""


@dataclass(frozen=True)
class DemoAccount:
    user_id: int
    participant_id: None = None

    def admit(self, market: Market, expires_ms: int) -> None:
        return None

    def debit(self, amount: Decimal) -> Decimal:
        """The balance after the debit (the row stays locked until the commit, so it is also
        the balance as committed)."""
        # Locks the user's row (PostgreSQL) or takes the write lock (SQLite).
        users = User.__table__
        balance = db.session.execute(
            update(users)
            .where(users.c.id == self.user_id, users.c.demo_balance >= amount)
            .values(demo_balance=users.c.demo_balance - amount)
            .returning(users.c.demo_balance)
        ).scalar()
        if balance is None:
            raise TradeError("Insufficient balance for this stake.", status_code=409, field="stake")
        return balance


def of_account(participant_id: int | None):
    """The WHERE clause for one account's trades (with Trade.user_id, one trader's)."""
    return Trade.participant_id.is_(None) if participant_id is None else Trade.participant_id == participant_id


def place_trade(user_id: int, symbol: str, direction: str, stake: str | Decimal, duration: str | int,
                idempotency_key: str, account: StakeAccount | None = None) -> Trade:
    """Validate, debit the stake and record the trade in ONE transaction.

    A second submission with the same idempotency key returns the first trade and debits
    nothing (also when both arrive at once: the unique key decides)."""
    if not IDEMPOTENCY_KEY.match(idempotency_key or ""):
        raise TradeError("This form is missing its submission key. Reload the page and try again.")
    account = account or DemoAccount(user_id)
    try:
        return _place(user_id, symbol, direction, stake, duration, idempotency_key, account)
    except DomainError:
        # A replay is looked up only when the new attempt fails (the market may have gone
        # stale, the stake may no longer be covered...): the common path saves a query.
        replay = existing_trade(user_id, idempotency_key)
        if replay is None:
            raise
        return replay


def _place(user_id: int, symbol: str, direction: str, stake: str | Decimal, duration: str | int,
           idempotency_key: str, account: StakeAccount) -> Trade:
    # One Redis round trip: the config version (the snapshot below, and the response
    # fragment's lookups, use it), the quote and the feed's heartbeat.
    reads = placement_reads((symbol or "").strip().upper())
    market = tradable_market(symbol)
    side = parse_direction(direction)
    amount = stake_within_limits(market, stake)
    seconds = parse_duration(duration, get_setting("allowed_durations"))
    max_open = int(get_setting("max_open_trades"))
    quote = reads.fresh_quote(market.symbol, market.name)
    check_clock_skew(reads.heartbeat)  # expiry is timed on this clock, the exit tick on the feed's

    opened_ms = now_ms()
    # Expiry counts from now, so the entry price must be (nearly) the price of now: with an
    # older quote a trader could enter at a price the market has already left.
    if opened_ms - quote.ts_ms > current_app.config["ENTRY_MAX_QUOTE_AGE_MS"]:
        raise TradeError("Prices are updating, try again.", status_code=409)
    expires_ms = opened_ms + seconds * 1000
    payout_percent = market.payout_percent
    try:
        account.admit(market, expires_ms)
        # The debit comes first: it locks the account's row (PostgreSQL) or takes the write
        # lock (SQLite), so the open-trade count below cannot race another placement.
        # Account row before trade rows is also the one lock order (see settlement.py).
        balance = account.debit(amount)
        open_count = db.session.scalar(
            select(func.count()).select_from(Trade).where(Trade.user_id == user_id, of_account(account.participant_id),
                                                          Trade.status == TradeStatus.OPEN.value)
        )
        if open_count >= max_open:
            raise TradeError(f"You already have {open_count} open trades (the limit is {max_open}). "
                             "Wait for one to settle.", status_code=409)
        trade = Trade(
            user_id=user_id,
            participant_id=account.participant_id,
            symbol=market.symbol,
            direction=side.value,
            stake=amount,
            payout_percent=payout_percent,
            potential_payout=potential_payout(amount, payout_percent),
            entry_price=quote.mid,
            entry_bid=quote.bid,
            entry_ask=quote.ask,
            entry_tick_id=quote.tick_id,
            entry_ts_ms=quote.ts_ms,
            duration_seconds=seconds,
            opened_at=ms_to_datetime(opened_ms),
            expires_at=ms_to_datetime(expires_ms),
            expires_ms=expires_ms,
            status=TradeStatus.OPEN.value,
            idempotency_key=idempotency_key,
        )
        db.session.add(trade)
        db.session.flush()
        # Detached with everything loaded, so reading it after the commit needs no query.
        db.session.expunge(trade)
        signed_in = _loaded_user(user_id) if isinstance(account, DemoAccount) else None
        db.session.commit()
        if signed_in is not None:
            _keep_loaded(*signed_in, demo_balance=balance)
    except IntegrityError:
        db.session.rollback()
        replay = existing_trade(user_id, idempotency_key)
        if replay is None:
            raise
        return replay
    except BaseException:
        db.session.rollback()
        raise
    return trade


def _loaded_user(user_id: int) -> tuple[User, dict] | None:
    """The user's object in this session (the signed-in user, loaded by the request) and
    its loaded column values, before the commit expires them."""
    user = db.session.identity_map.get(identity_key(User, user_id))
    if user is None:
        return None
    state = inspect(user)
    return user, {key: state.dict[key] for key in state.mapper.column_attrs.keys() if key in state.dict}


def _keep_loaded(user: User, loaded: dict, **changed) -> None:
    """After the commit: the values the user's object held, with what this transaction
    changed, as committed values. The answer's balance badge then reads the balance the
    debit returned instead of reloading the whole row (a query and a transaction more)."""
    for key, value in {**loaded, **changed}.items():
        set_committed_value(user, key, value)


def ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC).replace(microsecond=(ms % 1000) * 1000)


def open_trades(user_id: int, participant_id: int | None = None) -> list[Trade]:
    return list(db.session.scalars(
        select(Trade).where(Trade.user_id == user_id, of_account(participant_id), Trade.status == TradeStatus.OPEN.value)
        .order_by(Trade.expires_ms)
    ))


def recent_trades(user_id: int, limit: int = 8, participant_id: int | None = None) -> list[Trade]:
    return list(db.session.scalars(
        select(Trade).where(Trade.user_id == user_id, of_account(participant_id), Trade.status != TradeStatus.OPEN.value)
        .order_by(Trade.settled_at.desc(), Trade.id.desc()).limit(limit)
    ))


CHART_MARKS_LIMIT = 50


def chart_trades(user_id: int, symbol: str, since_ms: int, limit: int = CHART_MARKS_LIMIT,
                 participant_id: int | None = None) -> list[Trade]:
    """The user's newest trades of one account on a symbol opened since `since_ms` (oldest
    first): what the trade page's chart marks (entry, expiry and result)."""
    newest = list(db.session.scalars(
        select(Trade).where(Trade.user_id == user_id, of_account(participant_id), Trade.symbol == symbol,
                            Trade.entry_ts_ms >= since_ms,
                            Trade.status != TradeStatus.CANCELLED.value)
        .order_by(Trade.entry_ts_ms.desc(), Trade.id.desc()).limit(limit)
    ))
    return newest[::-1]


def chart_mark(trade: Trade) -> dict:
    return {"id": trade.id, "direction": trade.direction, "entry_ms": trade.entry_ts_ms,
            "entry_price": str(trade.entry_price), "expires_ms": trade.expires_ms, "status": trade.status,
            "result": trade.result, "exit_price": None if trade.exit_price is None else str(trade.exit_price)}


def trade_for_user(user_id: int, trade_id: int) -> Trade:
    """Another user's trade is indistinguishable from a missing one."""
    trade = db.session.get(Trade, trade_id)
    if trade is None or trade.user_id != user_id:
        raise NotFound("No such trade.")
    return trade


# ---- history -------------------------------------------------------------------------

RESULT_FILTERS = ("WIN", "LOSS", "TIE", "OPEN", "CANCELLED")


@dataclass(frozen=True)
class HistoryFilter:
    symbol: str | None = None
    result: str | None = None
    date_from: date | None = None
    date_to: date | None = None

    @classmethod
    def parse(cls, symbol: str | None, result: str | None, date_from: str | None, date_to: str | None) -> HistoryFilter:
        """Every wrong field at once (InvalidFields), so the form can mark each of them."""
        errors: dict[str, str] = {}
        symbol = (symbol or "").strip().upper() or None
        result = (result or "").strip().upper() or None
        if result is not None and result not in RESULT_FILTERS:
            errors["result"] = "Unknown result filter."
        dates = {}
        for name, raw, label in (("date_from", date_from, "From"), ("date_to", date_to, "To")):
            try:
                dates[name] = parse_iso_date(raw, label)
            except DomainError as exc:
                errors[name] = exc.message
        start, end = dates.get("date_from"), dates.get("date_to")
        if start and end and start > end:
            errors["date_to"] = "The 'to' date is before the 'from' date."
        if errors:
            raise InvalidFields(errors)
        return cls(symbol, result, start, end)

    def apply(self, query: Select, user_id: int) -> Select:
        # The demo account's history: competition trades are in points of another account.
        query = query.where(Trade.user_id == user_id, of_account(None))
        if self.symbol:
            query = query.where(Trade.symbol == self.symbol)
        if self.result in ("OPEN", "CANCELLED"):
            query = query.where(Trade.status == self.result)
        elif self.result:
            query = query.where(Trade.result == self.result)
        return query.where(*within_days(Trade.opened_at, self.date_from, self.date_to))

    def as_args(self) -> dict[str, str]:
        args = {"symbol": self.symbol, "result": self.result,
                "date_from": self.date_from.isoformat() if self.date_from else None,
                "date_to": self.date_to.isoformat() if self.date_to else None}
        return {k: v for k, v in args.items() if v}


def history_query(user_id: int, filters: HistoryFilter) -> Select:
    return filters.apply(select(Trade), user_id).order_by(Trade.opened_at.desc(), Trade.id.desc())


@dataclass(frozen=True)
class TradeStats:
    trades: int
    wins: int
    losses: int
    ties: int
    staked: Decimal
    returned: Decimal
    best: Decimal | None
    worst: Decimal | None

    @property
    def win_rate(self) -> Decimal | None:
        """Wins over decided trades (ties excluded), in percent."""
        decided = self.wins + self.losses
        if not decided:
            return None
        return (Decimal(self.wins) * 100 / decided).quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN)

    @property
    def net_profit(self) -> Decimal:
        return self.returned - self.staked


def trade_stats(user_id: int, filters: HistoryFilter | None = None) -> TradeStats:
    """Over settled trades only (open and cancelled ones have no result)."""
    filters = filters or HistoryFilter()
    settled = Trade.status == TradeStatus.SETTLED.value
    profit = type_coerce(Trade.payout - Trade.stake, Money())
    query = filters.apply(select(
        func.count(),
        func.count(case((Trade.result == TradeResult.WIN.value, 1))),
        func.count(case((Trade.result == TradeResult.LOSS.value, 1))),
        func.count(case((Trade.result == TradeResult.TIE.value, 1))),
        type_coerce(func.coalesce(func.sum(Trade.stake), 0), Money()),
        type_coerce(func.coalesce(func.sum(Trade.payout), 0), Money()),
        type_coerce(func.max(profit), Money()),
        type_coerce(func.min(profit), Money()),
    ).select_from(Trade).where(settled), user_id)
    trades, wins, losses, ties, staked, returned, best, worst = db.session.execute(query).one()
    return TradeStats(trades, wins, losses, ties, staked, returned, best, worst)


# ---- demo-balance reset ---------------------------------------------------------------

def cancel_open_trades_on_reset(user: User) -> None:
    """Hook for auth.service.reset_demo_balance (runs in its transaction, before the
    balance is set to the default). Open demo trades (never competition ones) are cancelled without a payout: the reset
    balance is the whole new starting point, so a refund would be overwritten anyway.
    The status flip is gated on OPEN, so a settler racing the reset pays at most once."""
    trades = Trade.__table__
    db.session.execute(
        update(trades)
        .where(trades.c.user_id == user.id, trades.c.participant_id.is_(None), trades.c.status == TradeStatus.OPEN.value)
        .values(status=TradeStatus.CANCELLED.value, rule=SettlementRule.RESET.value, payout=Decimal("0.00"),
                settled_at=utcnow())
    )
