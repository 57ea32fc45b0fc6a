"""What the CFD trading terminal shows, read from the database and the latest quotes: who
may trade on it, the competition's markets with their instrument terms and leverage cap,
the account's open positions, pending orders and fills, and the order ticket's preview
(margin required, P&L at the stop-loss and take-profit) with margin.py's arithmetic.
Reading only; every change goes through ``orders``."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import exists, func, select

from ..binary.formatting import format_price
from ..errors import DomainError, NotFound
from ..extensions import db
from ..market.models import Market
from ..market.quotes import Quote, latest_quote
from ..market.service import market_name, market_snapshot
from ..parsing import parse_decimal
from . import margin
from .models import (
    CfdFill,
    CfdOrder,
    CfdPosition,
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
from .orders import leverage_cap
from .positions import account_figures, holding, latest_at

S = CompetitionStatus
HISTORY_SHOWN = 50


class Access(enum.StrEnum):
    """What the terminal page does for this trader."""
    TRADE = "trade"  # a participant of a LIVE CFD competition
    NOT_JOINED = "not_joined"
    NOT_LIVE_YET = "not_live_yet"  # SCHEDULED: a countdown to the start
    OVER = "over"  # ENDED, SETTLED or CANCELLED: the results are on the competition's page
    NOT_CFD = "not_cfd"


@dataclass(frozen=True)
class Desk:
    competition: Competition
    participant: Participant | None
    access: Access


def open_desk(slug: str, user_id: int, *, is_admin: bool = False) -> Desk:
    """The competition by its slug (drafts do not exist for traders) and what this trader
    may do on its terminal."""
    competition = db.session.scalar(select(Competition).where(Competition.slug == slug)) if slug else None
    if competition is None or (competition.status == S.DRAFT.value and not is_admin):
        raise NotFound("This competition does not exist.")
    participant = db.session.scalar(select(Participant).where(
        Participant.competition_id == competition.id, Participant.user_id == user_id,
        Participant.status == ParticipantStatus.ACTIVE.value))
    if competition.kind != CompetitionKind.CFD.value:
        access = Access.NOT_CFD
    elif competition.status in (S.ENDED.value, S.SETTLED.value, S.CANCELLED.value):
        access = Access.OVER
    elif participant is None:
        access = Access.NOT_JOINED
    elif competition.status != S.LIVE.value:
        access = Access.NOT_LIVE_YET
    else:
        access = Access.TRADE
    return Desk(competition, participant, access)


# ---- markets and their terms ---------------------------------------------------------------

def allowed(competition: Competition, market: Market) -> bool:
    """Allowed markets name symbols and market types; an empty list allows every market."""
    listed = competition.allowed_markets or []
    return not listed or market.symbol in listed or market.market_type in listed


def markets(competition: Competition) -> list[Market]:
    from ..market.service import list_markets

    return [m for m in list_markets(active_only=True) if allowed(competition, m)]


def leverage_choices(cap: int) -> list[int]:
    """The usual broker steps up to the cap, and the cap itself."""
    steps = [s for s in (1, 2, 5, 10, 20, 30, 50, 100, 200, 500, 1000) if s < cap]
    return [*steps, cap]


def conversion_price(market: Market) -> Decimal | None:
    """The price that converts the market's quote currency into USD when another market
    gives it (the market itself and USD-quoted markets need none): that market's mid."""
    if market.conversion_symbol is None or market.conversion_symbol == market.symbol:
        return None
    quote = latest_quote(market.conversion_symbol)
    return quote.mid if quote is not None else None


# ---- the account's book --------------------------------------------------------------------

def open_positions(participant_id: int) -> list[CfdPosition]:
    return list(db.session.scalars(select(CfdPosition).where(
        CfdPosition.participant_id == participant_id, CfdPosition.status == PositionStatus.OPEN.value)
        .order_by(CfdPosition.id.desc())))


def pending_orders(participant_id: int) -> list[CfdOrder]:
    return list(db.session.scalars(select(CfdOrder).where(
        CfdOrder.participant_id == participant_id, CfdOrder.status == OrderStatus.PENDING.value)
        .order_by(CfdOrder.id.desc())))


def recent_fills(participant_id: int, limit: int = HISTORY_SHOWN) -> list[CfdFill]:
    return list(db.session.scalars(select(CfdFill).where(CfdFill.participant_id == participant_id)
                                   .order_by(CfdFill.id.desc()).limit(limit)))


@dataclass
class Placed:
    """What one placement changed in the account's book: the new position (a market order)
    or the new pending order, the fills it made, and what the tabs' counts are now.
    ``*_first``: the tab had no rows before, so it is sent whole rather than one row."""
    order: CfdOrder
    position: CfdPosition | None
    fills: list[CfdFill]
    open_count: int
    pending_count: int
    earlier_fills: bool

    @property
    def positions_first(self) -> bool:
        return self.position is not None and self.open_count <= 1

    @property
    def orders_first(self) -> bool:
        return self.position is None and self.pending_count <= 1


def placed(participant_id: int, order: CfdOrder) -> Placed:
    """The rows a placement added, read in three statements rather than the whole book."""
    position = db.session.get(CfdPosition, order.position_id) if order.position_id is not None else None
    fills = list(db.session.scalars(select(CfdFill).where(CfdFill.order_id == order.id, CfdFill.participant_id
                                                          == participant_id).order_by(CfdFill.id.desc())))
    first_new = min((f.id for f in fills), default=None)
    counted = select(
        select(func.count()).where(CfdPosition.participant_id == participant_id,
                                   CfdPosition.status == PositionStatus.OPEN.value).scalar_subquery(),
        select(func.count()).where(CfdOrder.participant_id == participant_id,
                                   CfdOrder.status == OrderStatus.PENDING.value).scalar_subquery(),
        exists().where(CfdFill.participant_id == participant_id,
                       CfdFill.id < (first_new if first_new is not None else 2**62)))
    open_count, pending_count, earlier = db.session.execute(counted).one()
    return Placed(order, position, fills, open_count, pending_count, earlier)


def own_position(user_id: int, position_id: int) -> CfdPosition:
    """A position of this trader; someone else's is as unknown as a missing one."""
    position = db.session.get(CfdPosition, position_id) if 0 < position_id < 2**63 else None
    if position is None or position.user_id != user_id:
        raise NotFound("No such position.")
    return position


def own_order(user_id: int, order_id: int) -> CfdOrder:
    order = db.session.get(CfdOrder, order_id) if 0 < order_id < 2**63 else None
    if order is None or order.user_id != user_id:
        raise NotFound("No such order.")
    return order


# ---- the order ticket's preview ------------------------------------------------------------

@dataclass(frozen=True)
class Preview:
    """What an order would need and risk, before it is sent: the price it is figured at,
    the margin it needs, the free margin now, and the P&L in USD at the SL and TP."""
    price: Decimal | None = None
    required_margin: Decimal | None = None
    free_margin: Decimal | None = None
    pnl_at_stop_loss: Decimal | None = None
    pnl_at_take_profit: Decimal | None = None
    message: str = ""

    def as_json(self) -> dict:
        def text(value):
            return None if value is None else f"{value:f}"
        return {"price": text(self.price), "required_margin": text(self.required_margin),
                "free_margin": text(self.free_margin), "pnl_at_stop_loss": text(self.pnl_at_stop_loss),
                "pnl_at_take_profit": text(self.pnl_at_take_profit), "message": self.message,
                "fits": None if self.required_margin is None or self.free_margin is None
                else self.required_margin <= self.free_margin}


def _number(raw: str | None, places: int) -> Decimal | None:
    """A figure the trader is still typing: None until it is a positive number (the order
    itself is checked field by field when it is sent)."""
    if not (raw or "").strip():
        return None
    try:
        value = parse_decimal(raw, "value", places=places, minimum=Decimal(0), above_minimum=True,
                              maximum=Decimal("1e12"))
    except DomainError:
        return None
    return value


def preview(competition: Competition, participant: Participant, form: Mapping[str, str]) -> Preview:
    market = db.session.scalar(select(Market).where(Market.symbol == (form.get("symbol") or "")))
    if market is None or not market.active or not allowed(competition, market):
        return Preview(message="This market is not traded in this competition.")
    quote: Quote | None = latest_quote(market.symbol)
    if quote is None:
        return Preview(message=f"{market.name} has no live price right now.")
    side = form.get("side") if form.get("side") in (Side.BUY.value, Side.SELL.value) else Side.BUY.value
    order_type = form.get("order_type") or OrderType.MARKET.value
    lots = _number(form.get("lots"), 8)
    level = _number(form.get("price"), market.precision + 2)
    cap = leverage_cap(competition, market)
    try:
        leverage = min(max(int(form.get("leverage") or cap), 1), cap)
    except ValueError:
        leverage = cap
    price = level if order_type in (OrderType.LIMIT.value, OrderType.STOP.value) and level else \
        margin.open_price(side, quote.bid, quote.ask)
    if order_type != OrderType.MARKET.value and not level:
        return Preview(message="Enter the order's price.")
    conversion = conversion_price(market)

    def rate_at(at: Decimal):
        return margin.usd_rate(market.symbol, market.conversion_symbol, at, conversion)

    try:
        free = account_figures(participant).free_margin
        required = margin.required_margin(lots, market.contract_size, price, rate_at(price), leverage) \
            if lots else None
        outcomes = {}
        for name in ("stop_loss", "take_profit"):
            exit_ = _number(form.get(name), market.precision + 2)
            outcomes[name] = margin.profit_usd(side, price, exit_, lots, market.contract_size, rate_at(exit_)) \
                if lots and exit_ else None
    except ValueError:  # no price yet for the conversion market
        return Preview(price=price, message="No price to convert this market's profit into USD yet.")
    return Preview(price=price, required_margin=required, free_margin=free,
                   pnl_at_stop_loss=outcomes["stop_loss"], pnl_at_take_profit=outcomes["take_profit"])


# ---- what the book shows ---------------------------------------------------------------------

@dataclass(frozen=True)
class Mark:
    """An open position at the latest quote: the price it is valued at and its P&L in USD."""
    price: Decimal
    pnl: Decimal


def marks(positions: list[CfdPosition]) -> dict[int, Mark]:
    """Each open position valued at the latest quote (positions without one are left out)."""
    found: dict[int, Mark] = {}
    for position in positions:
        if latest_at(position.symbol) is not None:
            valued = holding(position, latest_at)
            found[position.id] = Mark(valued.price, valued.profit)
    return found


SIDE_WORDS = {Side.BUY.value: "Buy", Side.SELL.value: "Sell"}


def _lots(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _price(symbol: str, value: Decimal) -> str:
    market = market_snapshot(symbol)
    return format_price(value, market.precision if market is not None else None)


def order_summary(order: CfdOrder) -> str:
    """The toast after an order: what was done, at which price."""
    what = f"{SIDE_WORDS[order.side]} {_lots(order.lots)} lots {market_name(order.symbol)}"
    if order.status == OrderStatus.FILLED.value:
        position = db.session.get(CfdPosition, order.position_id) if order.position_id else None
        return f"{what} filled at {_price(order.symbol, position.open_price)}." if position else f"{what} filled."
    if order.status == OrderStatus.PENDING.value:
        return (f"{what}: {order.order_type.lower()} order at {_price(order.symbol, order.price)} placed; "
                f"it fills when the price gets there.")
    return f"{what}: {order.status.lower()}{': ' + order.status_reason if order.status_reason else ''}."


def close_summary(position_id: int, fill: CfdFill | None) -> str:
    if fill is None:
        return f"Position #{position_id} was already closed."
    pnl = f" ({fill.realized_pnl:+,.2f} USD)" if fill.realized_pnl is not None else ""
    return f"Position #{position_id}: {_lots(fill.lots)} lots closed at {_price(fill.symbol, fill.price)}{pnl}."
