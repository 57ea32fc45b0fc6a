"""The web's CFD services: place, modify and cancel orders, change a position's SL/TP,
close a position now. Each is ONE transaction that commits (positions.py does the opening
and closing inside it), then notifies the engine.

Every check runs before anything is written, so a refusal changes nothing:
- the competition is a LIVE CFD competition and the user an active participant; an order
  or position id of someone else is "not found" (nothing about it is revealed);
- the market exists, is active and allowed in this competition, and its latest quote is
  fresh (at most ENTRY_MAX_QUOTE_AGE_MS old at receipt, as rise/fall entries);
- lots within the market's min/max and on its step; leverage within the competition's cap
  for the market's leverage class;
- a limit or stop level on the right side of the current price (a buy limit below the
  ask, a buy stop above it; a sell limit above the bid, a sell stop below it), and SL/TP
  on the right side of the entry (a buy: SL < entry < TP; a sell reversed). A market
  order's or a position's SL/TP are checked against the price that triggers them (a
  long's on the bid, a short's on the ask), so none fires at once.
A replayed form (its client_key) returns the order it placed and changes nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ..errors import Conflict, DomainError, Forbidden, NotFound
from ..extensions import db
from ..market.models import Market
from ..market.quotes import Quote, fresh_quote, now_ms
from ..market.service import market_snapshot
from ..parsing import parse_decimal
from ..types import utcnow
from . import margin, positions, rules
from .models import (
    DEFAULT_LEVERAGE,
    CfdFill,
    CfdOrder,
    CfdPosition,
    CloseReason,
    Competition,
    CompetitionKind,
    CompetitionStatus,
    OrderStatus,
    OrderType,
    Participant,
    ParticipantStatus,
    PositionStatus,
    Side,
)
from .positions import At
from .terms import leverage_class

log = logging.getLogger(__name__)

CLIENT_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
NO_ORDER = "There is no such order."
NO_POSITION = "There is no such position."
MAX_PRICE = Decimal("1000000000")


class OrderError(DomainError):
    status_code = 422


def notify_engine(kind: str, row_id: int) -> None:
    """Tells the CFD engine an order or position changed (after the commit). The engine
    registers its callables in app.extensions['cfd_listeners']; a lost notice is caught by
    its reconcile with the database."""
    for listener in current_app.extensions.get("cfd_listeners", []):
        try:
            listener(kind, row_id)
        except Exception:  # noqa: BLE001 - committed already; the reconcile catches up
            log.exception("CFD engine notice %s %s failed", kind, row_id)


# ---- reading and checking the form ------------------------------------------------------

def _choice(raw: str | None, allowed: type, field: str, message: str) -> str:
    value = (raw or "").strip().upper()
    if value not in {item.value for item in allowed}:
        raise OrderError(message, field=field)
    return value


def plain(value: Decimal) -> str:
    """A stored volume as a person writes it (0.01, not 0.0100)."""
    return f"{value.normalize():f}"


def parse_lots(raw: str | None, market: Market) -> Decimal:
    try:
        lots = parse_decimal(raw, "Lots", places=4, minimum=Decimal(0), above_minimum=True,
                             maximum=market.lot_max.normalize(), example=plain(market.lot_min), error=OrderError)
    except OrderError as exc:
        raise OrderError(exc.message, field="lots") from None
    if lots < market.lot_min:
        raise OrderError(f"Lots: at least {plain(market.lot_min)} on {market.name}.", field="lots")
    if lots % market.lot_step:
        raise OrderError(f"Lots: in steps of {plain(market.lot_step)} on {market.name}.", field="lots")
    return lots


def parse_price(raw: str | None, market: Market, label: str, field: str, *, optional: bool) -> Decimal | None:
    if optional and not (raw or "").strip():
        return None
    try:
        return parse_decimal(raw, label, places=market.precision, minimum=Decimal(0), above_minimum=True,
                             maximum=MAX_PRICE, example="1.2345", error=OrderError)
    except OrderError as exc:
        raise OrderError(exc.message, field=field) from None


def leverage_cap(competition: Competition, market: Market) -> int:
    limits = competition.max_leverage or DEFAULT_LEVERAGE
    klass = leverage_class(market.symbol, market.market_type)
    return int(limits.get(klass, DEFAULT_LEVERAGE[klass]))


def parse_leverage(raw: str | None, cap: int) -> int:
    text = (raw or "").strip()
    if not text:
        return cap
    if not text.isascii() or not text.isdigit() or len(text) > 6:
        raise OrderError("Leverage: enter a whole number, e.g. 10.", field="leverage")
    leverage = int(text)
    if not 1 <= leverage <= cap:
        raise OrderError(f"Leverage: between 1 and {cap} (1:{cap} is this competition's cap on this market).",
                         field="leverage")
    return leverage


def parse_expiry(raw: str | None, competition: Competition, now: datetime) -> datetime | None:
    text = (raw or "").strip()
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise OrderError("Expiry: enter a date and time, e.g. 2026-12-31T18:00.", field="expires_at") from None
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    if when <= now:
        raise OrderError("Expiry: must be in the future.", field="expires_at")
    if when > competition.end_at:
        raise OrderError("Expiry: must be before the competition ends (orders are cancelled at the end).",
                         field="expires_at")
    return when


def check_level(side: str, order_type: str, level: Decimal, quote: Quote | At) -> None:
    """A limit or stop on the right side of the current price (else it would fill at once)."""
    long = margin.is_long(side)
    if order_type == OrderType.LIMIT.value:
        wrong = level >= quote.ask if long else level <= quote.bid
        where = f"below the current ask ({quote.ask})" if long else f"above the current bid ({quote.bid})"
    else:
        wrong = level <= quote.ask if long else level >= quote.bid
        where = f"above the current ask ({quote.ask})" if long else f"below the current bid ({quote.bid})"
    if wrong:
        name = f"{'buy' if long else 'sell'} {order_type.lower()}"
        raise OrderError(f"Price: a {name} goes {where}; to trade at the current price use a market order.",
                         field="price")


def check_exits(side: str, stop_loss: Decimal | None, take_profit: Decimal | None, *, low: Decimal,
                high: Decimal, low_label: str, high_label: str) -> None:
    """SL/TP around the entry: a buy's SL below `low` and TP above `high`; a sell's TP below
    `low` and SL above `high`."""
    if margin.is_long(side):
        if stop_loss is not None and stop_loss >= low:
            raise OrderError(f"Stop-loss: a buy's stop-loss goes below {low_label} ({low}).", field="stop_loss")
        if take_profit is not None and take_profit <= high:
            raise OrderError(f"Take-profit: a buy's take-profit goes above {high_label} ({high}).",
                             field="take_profit")
    else:
        if stop_loss is not None and stop_loss <= high:
            raise OrderError(f"Stop-loss: a sell's stop-loss goes above {high_label} ({high}).", field="stop_loss")
        if take_profit is not None and take_profit >= low:
            raise OrderError(f"Take-profit: a sell's take-profit goes below {low_label} ({low}).",
                             field="take_profit")


def check_order_exits(side: str, order_type: str, stop_loss: Decimal | None, take_profit: Decimal | None,
                      level: Decimal | None, quote: Quote) -> None:
    """A pending order's SL/TP around its price; a market order's around the quote it fills
    at: a buy's SL below the bid (it triggers on the bid) and TP above the ask (its entry),
    a sell's SL above the ask and TP below the bid."""
    if order_type == OrderType.MARKET.value:
        check_exits(side, stop_loss, take_profit, low=quote.bid, high=quote.ask, low_label="the current bid",
                    high_label="the current ask")
    else:
        check_exits(side, stop_loss, take_profit, low=level, high=level, low_label="the order's price",
                    high_label="the order's price")


def check_position_exits(side: str, stop_loss: Decimal | None, take_profit: Decimal | None, quote: Quote) -> None:
    """An open position's SL/TP against the price that triggers them (a long's the bid, a
    short's the ask), so neither fires at once."""
    price = margin.close_price(side, quote.bid, quote.ask)
    label = "the current bid" if margin.is_long(side) else "the current ask"
    check_exits(side, stop_loss, take_profit, low=price, high=price, low_label=label, high_label=label)


# ---- who may trade where ----------------------------------------------------------------

def live_competition(competition: Competition | None, now: datetime) -> Competition:
    if competition is None or competition.status == CompetitionStatus.DRAFT.value:
        raise NotFound("This competition does not exist.")
    if competition.kind != CompetitionKind.CFD.value:
        raise Conflict("This competition is not traded with CFD orders.")
    if competition.status in (CompetitionStatus.SCHEDULED.value,):
        raise Conflict("Trading opens when the competition starts.")
    if competition.status != CompetitionStatus.LIVE.value or now >= competition.end_at:
        raise Conflict("This competition has ended: trading is closed.")
    return competition


def trading_participant(competition_id: int, user_id: int) -> Participant:
    participant = db.session.scalar(select(Participant).where(Participant.competition_id == competition_id,
                                                              Participant.user_id == user_id))
    check_can_trade(participant)
    return participant


def check_can_trade(participant: Participant | None) -> None:
    if participant is None or participant.status != ParticipantStatus.ACTIVE.value:
        raise Forbidden("You are not in this competition.")
    if participant.disqualified:
        raise Forbidden("You have been disqualified from this competition and can no longer trade.")


def tradable(competition: Competition, raw_symbol: str | None) -> Market:
    symbol = (raw_symbol or "").strip().upper()
    market = market_snapshot(symbol) if symbol else None
    if market is None:
        raise NotFound(f"There is no market called {raw_symbol!r}.", field="symbol")
    if not market.active:
        raise Conflict(f"{market.name} is closed for trading right now.", field="symbol")
    allowed = competition.allowed_markets or []
    if allowed and market.symbol not in allowed and market.market_type not in allowed:
        raise OrderError(f"{market.name} is not traded in this competition.", field="symbol")
    return market


def entry_quote(market: Market) -> Quote:
    """The latest quote, fresh enough to trade at when the request is received."""
    quote = fresh_quote(market.symbol, market.name)
    if now_ms() - quote.ts_ms > current_app.config["ENTRY_MAX_QUOTE_AGE_MS"]:
        raise Conflict("Prices are updating, try again.")
    return quote


def _own(model, row_id, user_id: int, message: str):
    try:
        key = int(row_id)
    except (TypeError, ValueError):
        raise NotFound(message) from None
    row = db.session.get(model, key) if 0 < key < 2**63 else None
    if row is None or row.user_id != user_id:
        raise NotFound(message)
    return row


def _commit_or_rollback(work):
    try:
        result = work()
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return result


# ---- placing ----------------------------------------------------------------------------

def existing_order(competition_id: int, user_id: int, client_key: str) -> CfdOrder | None:
    return db.session.scalar(select(CfdOrder).where(CfdOrder.competition_id == competition_id,
                                                    CfdOrder.user_id == user_id, CfdOrder.client_key == client_key))


def place_order(slug: str, user_id: int, form: Mapping[str, str]) -> CfdOrder:
    """Validate and place an order in ONE transaction: a MARKET order fills now at the
    latest fresh quote (FILLED, with its position); a LIMIT or STOP order rests PENDING for
    the engine. A replayed client_key returns the order it placed, changing nothing."""
    return place_order_once(slug, user_id, form)[0]


def place_order_once(slug: str, user_id: int, form: Mapping[str, str], *, competition: Competition | None = None,
                     participant: Participant | None = None) -> tuple[CfdOrder, bool]:
    """``place_order``, and whether this call placed the order (False: a replayed
    client_key, answered with the order an earlier call placed). A caller that has just
    read the competition (by this slug) and this user's participant row in the same
    session passes them, saving their queries; every check still runs on them, and the
    locks read status, end and account again before anything is written."""
    client_key = (form.get("client_key") or "").strip()
    if not CLIENT_KEY.match(client_key):
        raise OrderError("This form is missing its submission key. Reload the page and try again.",
                         field="client_key")
    if competition is None or competition.slug != slug:
        competition = db.session.scalar(select(Competition).where(Competition.slug == slug))
    if participant is not None and (competition is None or participant.competition_id != competition.id
                                    or participant.user_id != user_id):
        participant = None
    try:
        order = _place(competition, user_id, form, client_key, participant)
    except IntegrityError:
        replay = existing_order(competition.id, user_id, client_key)
        if replay is None:
            raise
        return replay, False
    except DomainError:
        # The replay is looked up only when the attempt fails: the common path saves a query.
        replay = existing_order(competition.id, user_id, client_key) if competition is not None else None
        if replay is None:
            raise
        return replay, False
    notify_engine("order", order.id)
    if order.position_id is not None:
        notify_engine("position", order.position_id)
    return order, True


def _place(competition: Competition | None, user_id: int, form: Mapping[str, str], client_key: str,
           participant: Participant | None = None) -> CfdOrder:
    now = utcnow()
    competition = live_competition(competition, now)
    if participant is None:
        participant = trading_participant(competition.id, user_id)
    else:
        check_can_trade(participant)
    market = tradable(competition, form.get("symbol"))
    side = _choice(form.get("side"), Side, "side", "Choose Buy or Sell.")
    order_type = _choice(form.get("order_type") or OrderType.MARKET.value, OrderType, "order_type",
                         "Choose a market, limit or stop order.")
    lots = parse_lots(form.get("lots"), market)
    leverage = parse_leverage(form.get("leverage"), leverage_cap(competition, market))
    pending = order_type != OrderType.MARKET.value
    level = parse_price(form.get("price"), market, "Price", "price", optional=False) if pending else None
    stop_loss = parse_price(form.get("stop_loss"), market, "Stop-loss", "stop_loss", optional=True)
    take_profit = parse_price(form.get("take_profit"), market, "Take-profit", "take_profit", optional=True)
    expires_at = parse_expiry(form.get("expires_at"), competition, now) if pending else None
    quote = entry_quote(market)
    if pending:
        check_level(side, order_type, level, quote)
    check_order_exits(side, order_type, stop_loss, take_profit, level, quote)

    def place() -> CfdOrder:
        status, end_at = positions.hold_competition(competition.id)
        if status != CompetitionStatus.LIVE.value or utcnow() >= end_at:
            raise Conflict("This competition has ended: trading is closed.")
        account = positions.lock_account(participant.id)
        check_can_trade(account)  # as it is under the lock
        rules.check_order(competition, account.id, lots)  # max lots per order, max open positions
        order = CfdOrder(competition_id=competition.id, participant_id=account.id, user_id=user_id,
                         client_key=client_key, symbol=market.symbol, side=side, order_type=order_type, lots=lots,
                         price=level, stop_loss=stop_loss, take_profit=take_profit, leverage=leverage,
                         expires_at=expires_at, status=OrderStatus.PENDING.value, created_at=now, updated_at=now)
        db.session.add(order)
        db.session.flush()  # a replayed key stops here (unique), before any position
        if not pending:
            at = At.of_quote(quote)
            long = margin.is_long(side)
            rule = (f"market {'buy at the ask' if long else 'sell at the bid'} {quote.ask if long else quote.bid} "
                    f"of the latest quote at receipt")
            position = positions.open_position(account, symbol=market.symbol, side=side, lots=lots, leverage=leverage,
                                               at=at, rule=rule, reason=OrderType.MARKET.value, order=order,
                                               stop_loss=stop_loss, take_profit=take_profit)
            order.status = OrderStatus.FILLED.value
            order.position_id = position.id
            order.done_at = now
            db.session.flush()
        db.session.expunge(order)  # loaded, so reading it after the commit needs no query
        return order

    return _commit_or_rollback(place)


# ---- changing and cancelling ------------------------------------------------------------

def _pending_of(user_id: int, order_id) -> tuple[CfdOrder, Competition, Participant]:
    order = _own(CfdOrder, order_id, user_id, NO_ORDER)
    competition = live_competition(db.session.get(Competition, order.competition_id), utcnow())
    participant = db.session.get(Participant, order.participant_id)
    check_can_trade(participant)
    if order.status != OrderStatus.PENDING.value:
        raise Conflict(f"This order is no longer pending (it is {order.status.lower()}).")
    return order, competition, participant


def _claim_pending(order_id: int, participant_id: int, **values) -> None:
    """The conditional UPDATE of a pending order under the account lock (the engine may
    have filled it a moment ago)."""
    positions.lock_account(participant_id)
    now = utcnow()
    done = db.session.execute(
        update(CfdOrder).where(CfdOrder.id == order_id, CfdOrder.status == OrderStatus.PENDING.value)
        .values(updated_at=now, **values).execution_options(synchronize_session=False)).rowcount
    if done != 1:
        raise Conflict("This order is no longer pending (it was filled or cancelled a moment ago).")


def cancel_order(user_id: int, order_id) -> CfdOrder:
    """Cancels a pending order of the user's."""
    order = _own(CfdOrder, order_id, user_id, NO_ORDER)
    check_can_trade(db.session.get(Participant, order.participant_id))
    if order.status != OrderStatus.PENDING.value:
        raise Conflict(f"This order is no longer pending (it is {order.status.lower()}).")
    order_key = order.id

    def cancel() -> CfdOrder:
        _claim_pending(order_key, order.participant_id, status=OrderStatus.CANCELLED.value,
                       status_reason="Cancelled by the trader.", done_at=utcnow())
        return db.session.get(CfdOrder, order_key, populate_existing=True)

    order = _commit_or_rollback(cancel)
    notify_engine("order", order_key)
    return order


def _changed(form: Mapping[str, str], field: str) -> bool:
    return field in form


def modify_order(user_id: int, order_id, form: Mapping[str, str]) -> CfdOrder:
    """Changes a pending order's price, SL/TP or expiry. A field left out keeps its value;
    an empty SL, TP or expiry removes it."""
    order, competition, _ = _pending_of(user_id, order_id)
    market = market_snapshot(order.symbol)
    level = (parse_price(form.get("price"), market, "Price", "price", optional=False)
             if _changed(form, "price") else order.price)
    stop_loss = (parse_price(form.get("stop_loss"), market, "Stop-loss", "stop_loss", optional=True)
                 if _changed(form, "stop_loss") else order.stop_loss)
    take_profit = (parse_price(form.get("take_profit"), market, "Take-profit", "take_profit", optional=True)
                   if _changed(form, "take_profit") else order.take_profit)
    expires_at = (parse_expiry(form.get("expires_at"), competition, utcnow())
                  if _changed(form, "expires_at") else order.expires_at)
    quote = entry_quote(market)
    check_level(order.side, order.order_type, level, quote)
    check_order_exits(order.side, order.order_type, stop_loss, take_profit, level, quote)
    order_key, participant_id = order.id, order.participant_id

    def modify() -> CfdOrder:
        _claim_pending(order_key, participant_id, price=level, stop_loss=stop_loss, take_profit=take_profit,
                       expires_at=expires_at)
        return db.session.get(CfdOrder, order_key, populate_existing=True)

    order = _commit_or_rollback(modify)
    notify_engine("order", order_key)
    return order


def _open_of(user_id: int, position_id) -> tuple[CfdPosition, Market]:
    position = _own(CfdPosition, position_id, user_id, NO_POSITION)
    live_competition(db.session.get(Competition, position.competition_id), utcnow())
    check_can_trade(db.session.get(Participant, position.participant_id))
    if position.status != PositionStatus.OPEN.value:
        raise Conflict("This position is already closed.")
    return position, market_snapshot(position.symbol)


def modify_position(user_id: int, position_id, form: Mapping[str, str]) -> CfdPosition:
    """Changes an open position's SL/TP. A field left out keeps its value; empty removes it."""
    position, market = _open_of(user_id, position_id)
    stop_loss = (parse_price(form.get("stop_loss"), market, "Stop-loss", "stop_loss", optional=True)
                 if _changed(form, "stop_loss") else position.stop_loss)
    take_profit = (parse_price(form.get("take_profit"), market, "Take-profit", "take_profit", optional=True)
                   if _changed(form, "take_profit") else position.take_profit)
    check_position_exits(position.side, stop_loss, take_profit, entry_quote(market))
    position_key, participant_id = position.id, position.participant_id

    def modify() -> CfdPosition:
        positions.lock_account(participant_id)
        done = db.session.execute(
            update(CfdPosition).where(CfdPosition.id == position_key,
                                      CfdPosition.status == PositionStatus.OPEN.value)
            .values(stop_loss=stop_loss, take_profit=take_profit, version=CfdPosition.version + 1)
            .execution_options(synchronize_session=False)).rowcount
        if done != 1:
            raise Conflict("This position was closed a moment ago.")
        return db.session.get(CfdPosition, position_key, populate_existing=True)

    position = _commit_or_rollback(modify)
    notify_engine("position", position_key)
    return position


def close_position_now(user_id: int, position_id, lots: str | None = None) -> CfdFill:
    """Closes the position (or `lots` of it) at the latest fresh quote: a long at the bid,
    a short at the ask. What stays open must be at least the market's minimum."""
    position, market = _open_of(user_id, position_id)
    closing = None
    if (lots or "").strip():
        closing = parse_lots(lots, market)
        if closing > position.lots:
            raise OrderError(f"Lots: this position has {plain(position.lots)} lots open.", field="lots")
        left = position.lots - closing
        if 0 < left < market.lot_min:
            raise OrderError(f"Lots: leave at least {plain(market.lot_min)} open, or close all of it.", field="lots")
        if left == 0:
            closing = None
    quote = entry_quote(market)
    long = margin.is_long(position.side)
    rule = (f"manual close of a {'long at the bid' if long else 'short at the ask'} "
            f"{quote.bid if long else quote.ask} of the latest quote at receipt")
    position_key = position.id

    def close() -> CfdFill:
        fill = positions.close_position(position_key, at=At.of_quote(quote), reason=CloseReason.MANUAL.value,
                                        rule=rule, lots=closing)
        if fill is None:
            raise Conflict("This position was closed a moment ago (or has fewer lots open now).")
        db.session.flush()
        db.session.expunge(fill)
        return fill

    fill = _commit_or_rollback(close)
    notify_engine("position", position_key)
    return fill
