"""Opening and closing CFD positions of a competition account, shared by the web (market
orders, manual closes) and the engine (pending orders, SL/TP, stop-out, the end).

Every function runs inside the caller's transaction and never commits. The account is the
unit of serialisation: `lock_account` is the first write of any change to an account's
positions (the participant row, then the order or position rows: one lock order), and every
transition is a conditional UPDATE (`WHERE status = 'OPEN'` / `'PENDING'`), so two closers
racing each other close a position once. Each fill records the tick it happened at (id,
time, bid, ask) and the rule that fired: its proof. The arithmetic is margin.py's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select, update

from ..errors import DomainError, NotFound
from ..extensions import db
from ..market import quotes
from ..market.service import market_snapshot
from ..types import utcnow
from . import gate, margin, rules
from .models import (
    CfdFill,
    CfdOrder,
    CfdPosition,
    Competition,
    CompetitionStatus,
    OrderStatus,
    OrderType,
    Participant,
    ParticipantStatus,
    PositionStatus,
    Side,
)

OPEN = PositionStatus.OPEN.value


@dataclass(frozen=True)
class At:
    """The recorded tick a fill happens at (its proof)."""
    tick_id: int | None
    ts_ms: int
    bid: Decimal
    ask: Decimal

    @classmethod
    def of_quote(cls, quote) -> At:
        return cls(quote.tick_id, quote.ts_ms, quote.bid, quote.ask)

    @classmethod
    def of_tick(cls, tick) -> At:
        return cls(tick.id, tick.ts_ms, tick.bid, tick.ask)

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2


Prices = Callable[[str], "At | None"]


class InsufficientMargin(DomainError):
    """An order needs more margin than the account has free; names both figures."""
    status_code = 409

    def __init__(self, required: Decimal, free: Decimal):
        super().__init__(f"Not enough free margin: this order needs {required:,.2f} USD of margin and the account "
                         f"has {max(free, margin.ZERO):,.2f} USD free. Trade fewer lots or lower risk.",
                         field="lots")
        self.required = required
        self.free = free


def latest_at(symbol: str) -> At | None:
    """The latest published quote of `symbol`, as an At (None without one)."""
    quote = quotes.latest_quote(symbol)
    return At.of_quote(quote) if quote is not None else None


def lock_account(participant_id: int) -> Participant:
    """Serialises the account: bumps its version (row lock on PostgreSQL, the write lock on
    SQLite) and returns the row as it is under that lock (one statement: UPDATE ... RETURNING)."""
    participant = db.session.scalars(
        update(Participant).where(Participant.id == participant_id).values(version=Participant.version + 1)
        .returning(Participant), execution_options={"populate_existing": True}).one_or_none()
    if participant is None:
        raise NotFound("This competition account does not exist.")
    return participant


def hold_competition(competition_id: int) -> tuple[str, datetime]:
    """The competition's (status, end_at) under a share lock, taken before the account's:
    its end (or a cancel), which updates the row and then closes every account, waits for
    this transaction or this one for it, so no position opens after its closer looked. One
    lock order: competition, account, then its orders and positions."""
    return tuple(db.session.execute(
        select(Competition.status, Competition.end_at, *gate.shared(competition_id))
        .where(Competition.id == competition_id).with_for_update(read=True)).one())[:2]


def open_positions(participant_id: int) -> list[CfdPosition]:
    return list(db.session.scalars(select(CfdPosition).where(CfdPosition.participant_id == participant_id,
                                                            CfdPosition.status == OPEN).order_by(CfdPosition.id)))


def _rate(symbol: str, conversion_symbol: str | None, price: Decimal, prices: Prices) -> Decimal | None:
    """USD/<quote> for a position of `symbol` valued at `price` (None: quoted in USD)."""
    if conversion_symbol is None or conversion_symbol == symbol:
        return margin.usd_rate(symbol, conversion_symbol, price)
    conversion = prices(conversion_symbol)
    return margin.usd_rate(symbol, conversion_symbol, price, conversion.mid if conversion else None)


def holding(position, prices: Prices) -> margin.Holding:
    """The position valued at `prices`; without a price (or a conversion rate) at its open
    price, so it counts its margin and no profit."""
    at = prices(position.symbol)
    rate = None
    if at is not None:
        try:
            rate = _rate(position.symbol, position.conversion_symbol, margin.close_price(position.side, at.bid, at.ask),
                         prices)
        except ValueError:
            at = None
    bid, ask = (at.bid, at.ask) if at is not None else (position.open_price, position.open_price)
    return margin.Holding(position.id, position.side, position.lots, position.contract_size, position.open_price,
                          position.margin, bid, ask, rate)


def _figures(participant: Participant, positions: Iterable, prices: Prices) -> margin.Figures:
    return margin.figures(participant.cash, [holding(p, prices) for p in positions])


def _prices_with(symbol: str, at: At, prices: Prices | None = None) -> Prices:
    """`at` for `symbol`, the other symbols at `prices` (default: the latest quotes)."""
    others = prices or latest_at
    return lambda s: at if s == symbol else others(s)


# What valuing a position needs: plain rows, not ORM objects (an order values every open
# position of its account).
_VALUED = (CfdPosition.id, CfdPosition.symbol, CfdPosition.side, CfdPosition.lots, CfdPosition.contract_size,
           CfdPosition.conversion_symbol, CfdPosition.open_price, CfdPosition.margin)


def account_figures(participant: Participant, prices: Prices | None = None) -> margin.Figures:
    """Balance, equity, used and free margin, margin level of the account, its open
    positions valued at `prices(symbol)` (default: the latest quotes)."""
    rows = db.session.execute(select(*_VALUED).where(CfdPosition.participant_id == participant.id,
                                                     CfdPosition.status == OPEN)).all()
    return _figures(participant, rows, prices or latest_at)


def _fill(position: CfdPosition, *, action: str, side: str, lots: Decimal, price: Decimal, at: At, rule: str,
          reason: str, rate: Decimal | None, order_id: int | None = None, pnl: Decimal | None = None) -> CfdFill:
    fill = CfdFill(competition_id=position.competition_id, participant_id=position.participant_id,
                   user_id=position.user_id, order_id=order_id, position_id=position.id, symbol=position.symbol,
                   action=action, side=side, lots=lots, price=price, tick_id=at.tick_id, tick_ts_ms=at.ts_ms,
                   bid=at.bid, ask=at.ask, rule=rule[:160], reason=reason, usd_rate=rate, realized_pnl=pnl)
    db.session.add(fill)
    return fill


def open_position(participant: Participant, *, symbol: str, side: str, lots: Decimal, leverage: int, at: At,
                  rule: str, reason: str, order: CfdOrder | None, stop_loss: Decimal | None = None,
                  take_profit: Decimal | None = None, price: Decimal | None = None) -> CfdPosition:
    """Opens a position of `lots` at the tick `at` (a buy at the ask, a sell at the bid, or
    at `price` when a fill rule gives a better one), if its margin fits the free margin
    valued at `at` (other symbols at their latest quotes); InsufficientMargin otherwise,
    with nothing written. The caller has locked the account."""
    market = market_snapshot(symbol)
    if market is None:
        raise NotFound(f"There is no market called {symbol!r}.")
    prices = _prices_with(symbol, at)
    price = price if price is not None else margin.open_price(side, at.bid, at.ask)
    rate = _rate(symbol, market.conversion_symbol, price, prices)
    required = margin.required_margin(lots, market.contract_size, price, rate, leverage)
    before = account_figures(participant, prices)
    if required > before.free_margin:
        raise InsufficientMargin(required, before.free_margin)
    position = CfdPosition(
        competition_id=participant.competition_id, participant_id=participant.id, user_id=participant.user_id,
        order_id=order.id if order is not None else None, symbol=symbol, side=side, lots=lots, opened_lots=lots,
        contract_size=market.contract_size, quote_currency=market.quote_currency,
        conversion_symbol=market.conversion_symbol, leverage=leverage, margin=required, open_price=price,
        open_tick_id=at.tick_id, stop_loss=stop_loss, take_profit=take_profit, status=OPEN, opened_at=utcnow())
    db.session.add(position)
    db.session.flush()
    _fill(position, action="OPEN", side=side, lots=lots, price=price, at=at, rule=rule, reason=reason, rate=rate,
          order_id=position.order_id)
    participant.used_margin += required
    participant.trades_count += 1
    participant.equity = before.equity + holding(position, prices).profit
    return position


def close_position(position_id: int, *, at: At, reason: str, rule: str, lots: Decimal | None = None) -> CfdFill | None:
    """Closes `lots` of the position (all of it by default) at the tick `at`, exactly once:
    None when it is no longer open (someone else closed it) or holds fewer lots. Realised
    P&L goes into the account's cash; the margin of the closed lots is released (pro rata
    on a partial close). The negative-balance rule is the engine's."""
    participant_id = db.session.scalar(select(CfdPosition.participant_id).where(CfdPosition.id == position_id))
    if participant_id is None:
        raise NotFound("This position does not exist.")
    participant = lock_account(participant_id)
    position = db.session.get(CfdPosition, position_id, populate_existing=True)
    if position.status != OPEN:
        return None
    closing = position.lots if lots is None else lots
    if closing <= 0:
        raise ValueError("a close needs a positive number of lots")
    full = closing == position.lots
    now = utcnow()
    price = margin.close_price(position.side, at.bid, at.ask)
    values = {"lots": CfdPosition.lots - closing, "version": CfdPosition.version + 1}
    if full:
        values |= {"status": PositionStatus.CLOSED.value, "closed_at": now, "close_price": price,
                   "close_reason": reason}
    done = db.session.execute(
        update(CfdPosition).where(CfdPosition.id == position_id, CfdPosition.status == OPEN,
                                  CfdPosition.lots >= closing)
        .values(**values).execution_options(synchronize_session=False)).rowcount
    if done != 1:
        return None
    prices = _prices_with(position.symbol, at)
    try:
        rate = _rate(position.symbol, position.conversion_symbol, price, prices)
    except ValueError:  # no price of the conversion market now: the rate the position opened at
        rate = db.session.scalar(select(CfdFill.usd_rate).where(CfdFill.position_id == position_id,
                                                                CfdFill.action == "OPEN"))
    pnl = margin.profit_usd(position.side, position.open_price, price, closing, position.contract_size, rate)
    released = position.margin if full else margin.cents(position.margin * closing / position.lots)
    fill = _fill(position, action="CLOSE", side=Side.SELL.value if margin.is_long(position.side) else Side.BUY.value,
                 lots=closing, price=price, at=at, rule=rule, reason=reason, rate=rate, pnl=pnl)
    db.session.refresh(position)
    position.margin -= released
    position.realized_pnl += pnl
    rules.roll_day(participant, at.ts_ms)  # the daily-loss base, before the cash moves
    participant.cash += pnl
    participant.used_margin -= released
    db.session.flush()
    participant.equity = account_figures(participant, prices).equity
    return fill


def _conversion_failed(exc: ValueError) -> str:
    return f"No price to value this order in USD ({exc})."


def fill_pending_order(order_id: int, *, at: At, rule: str) -> CfdPosition | None:
    """Fills a PENDING limit or stop order at the tick `at`, exactly once (None when it is
    no longer pending, or the competition no longer LIVE: its end cancels the order). A buy
    limit fills at min(limit, ask) (the limit or better), a sell limit at max(limit, bid); a
    stop at that tick's price (ask for a buy, bid for a sell), never at the stop level. Without enough free margin then, the order is REJECTED with
    the reason and no position is opened (returns None)."""
    owner = db.session.execute(select(CfdOrder.participant_id, CfdOrder.competition_id)
                               .where(CfdOrder.id == order_id)).one_or_none()
    if owner is None:
        raise NotFound("This order does not exist.")
    if hold_competition(owner.competition_id)[0] != CompetitionStatus.LIVE.value:
        return None  # trading is over: the end cancels the order
    participant = lock_account(owner.participant_id)
    order = db.session.get(CfdOrder, order_id, populate_existing=True)
    if order.status != OrderStatus.PENDING.value:
        return None
    price = fill_price(order.side, order.order_type, order.price, at)
    now = utcnow()
    claimed = db.session.execute(
        update(CfdOrder).where(CfdOrder.id == order_id, CfdOrder.status == OrderStatus.PENDING.value)
        .values(status=OrderStatus.FILLED.value, done_at=now, updated_at=now)
        .execution_options(synchronize_session=False)).rowcount
    if claimed != 1:
        return None
    if participant.status != ParticipantStatus.ACTIVE.value or participant.disqualified:
        refusal = "The account can no longer trade."
    else:  # the rule set (max open positions, max lots per order), then the margin
        refusal = rules.pending_fill_refusal(order.competition_id, participant.id, order.lots)
    if refusal is None:
        try:
            position = open_position(participant, symbol=order.symbol, side=order.side, lots=order.lots,
                                     leverage=order.leverage, at=at, rule=rule, reason=order.order_type, order=order,
                                     stop_loss=order.stop_loss, take_profit=order.take_profit, price=price)
        except InsufficientMargin as exc:
            refusal = exc.message
        except ValueError as exc:
            refusal = _conversion_failed(exc)
    db.session.refresh(order)
    if refusal is not None:
        order.status = OrderStatus.REJECTED.value
        order.status_reason = refusal[:255]
        db.session.flush()
        return None
    order.position_id = position.id
    db.session.flush()
    return position


def triggers(side: str, order_type: str, level: Decimal, at: At) -> bool:
    """Whether the tick crosses a pending order's level: a buy limit when ask <= limit, a
    sell limit when bid >= limit, a buy stop when ask >= stop, a sell stop when bid <= stop."""
    long = margin.is_long(side)
    if order_type == OrderType.LIMIT.value:
        return at.ask <= level if long else at.bid >= level
    if order_type == OrderType.STOP.value:
        return at.ask >= level if long else at.bid <= level
    raise ValueError(f"not a pending order type: {order_type}")


def fill_price(side: str, order_type: str, level: Decimal, at: At) -> Decimal:
    """The price a triggered pending order fills at (ValueError if `at` does not trigger it)."""
    if not triggers(side, order_type, level, at):
        raise ValueError(f"tick {at.tick_id} (bid {at.bid}, ask {at.ask}) does not trigger a {side} {order_type} "
                         f"at {level}")
    if order_type == OrderType.LIMIT.value:
        return min(level, at.ask) if margin.is_long(side) else max(level, at.bid)
    return margin.open_price(side, at.bid, at.ask)


def fill_rule(side: str, order_type: str, level: Decimal, at: At) -> str:
    """The rule text of a pending order's fill, for its proof."""
    long = margin.is_long(side)
    name = f"{'buy' if long else 'sell'} {order_type.lower()}"
    seen = f"ask {at.ask}" if long else f"bid {at.bid}"
    if order_type == OrderType.LIMIT.value:
        return f"{name}: {seen} {'<=' if long else '>='} limit {level}, filled at the limit or better"
    return f"{name}: {seen} {'>=' if long else '<='} stop {level}, filled at the tick's price"


def cancel_open_orders(competition_id: int, reason: str) -> int:
    """Cancels every pending order of the competition (its end, a rebuy's reset...)."""
    now = utcnow()
    return db.session.execute(
        update(CfdOrder).where(CfdOrder.competition_id == competition_id,
                               CfdOrder.status == OrderStatus.PENDING.value)
        .values(status=OrderStatus.CANCELLED.value, status_reason=reason[:255], done_at=now, updated_at=now)
        .execution_options(synchronize_session=False)).rowcount


def close_all_at(competition_id: int, prices: Callable[[str], At], reason: str) -> int:
    """Closes every open position of the competition at `prices(symbol)` (for its end: the
    recorded tick at or before end_at), one account at a time. Returns how many it closed."""
    rows = db.session.execute(
        select(CfdPosition.id, CfdPosition.symbol).where(CfdPosition.competition_id == competition_id,
                                                         CfdPosition.status == OPEN)
        .order_by(CfdPosition.participant_id, CfdPosition.id)).all()
    closed = 0
    for position_id, symbol in rows:
        at = prices(symbol)
        if at is None:
            raise ValueError(f"no recorded price of {symbol} to close position {position_id} at")
        label = reason.lower().replace("_", " ")
        rule = f"{label}: closed at tick {at.tick_id} (bid {at.bid}, ask {at.ask})"
        if close_position(position_id, at=at, reason=reason, rule=rule) is not None:
            closed += 1
    return closed
