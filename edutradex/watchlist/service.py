"""A user's watchlist: add, remove, reorder (each commits), and the rows the dashboard
shows (latest quote and a sparkline of the last hour, read in one query for all symbols)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from ..auth.models import User
from ..errors import Conflict, DomainError, NotFound
from ..extensions import db
from ..market import quotes
from ..market.candles import MINUTE, bucket
from ..market.models import Candle, Market
from . import signal
from .models import WatchlistEntry

MAX_ENTRIES = 30
SPARK_SECONDS = 3600
SPARK_WIDTH, SPARK_HEIGHT = 100, 24


def room_for(symbols: list[str] | set[str]) -> str | None:
    """The Socket.IO room of a list of symbols: one per distinct set, so every user with
    the same list shares it. Derived on the server from the stored list, never from the client."""
    if not symbols:
        return None
    return "watchlist:" + hashlib.sha256("\n".join(sorted(symbols)).encode()).hexdigest()[:24]


def symbols_of(user_id: int) -> list[str]:
    return list(db.session.scalars(select(WatchlistEntry.symbol).where(WatchlistEntry.user_id == user_id)
                                   .order_by(WatchlistEntry.position, WatchlistEntry.id)))


def entries(user_id: int) -> list[WatchlistEntry]:
    return list(db.session.scalars(select(WatchlistEntry).where(WatchlistEntry.user_id == user_id)
                                   .order_by(WatchlistEntry.position, WatchlistEntry.id)))


def add_symbol(user_id: int, raw_symbol: str) -> WatchlistEntry:
    symbol = (raw_symbol or "").strip().upper()
    if not symbol:
        raise DomainError("Choose a market to add.", field="symbol")
    market = db.session.scalar(select(Market).where(Market.symbol == symbol[:32]))
    if market is None:
        raise DomainError(f"Unknown market {symbol[:32]!r}.", field="symbol")
    if not market.active:
        raise DomainError(f"{market.name} is paused by the operators and cannot be added.", field="symbol")
    # the user's row lock (PostgreSQL) serialises two adds of one user, so the limit holds
    db.session.execute(select(User.id).where(User.id == user_id).with_for_update())
    current = symbols_of(user_id)
    if market.symbol in current:
        raise Conflict(f"{market.name} is already on your watchlist.", field="symbol")
    if len(current) >= MAX_ENTRIES:
        raise DomainError(f"A watchlist holds at most {MAX_ENTRIES} markets: remove one first.", field="symbol")
    top = db.session.scalar(select(func.max(WatchlistEntry.position)).where(WatchlistEntry.user_id == user_id))
    entry = WatchlistEntry(user_id=user_id, symbol=market.symbol, position=(top or 0) + 1)
    db.session.add(entry)
    signal.mark_changed(db.session)
    try:
        db.session.commit()
    except IntegrityError:  # the same add from another tab won the race
        db.session.rollback()
        raise Conflict(f"{market.name} is already on your watchlist.", field="symbol") from None
    return entry


def _own_entry(user_id: int, entry_id: int) -> WatchlistEntry:
    entry = db.session.get(WatchlistEntry, entry_id)
    if entry is None or entry.user_id != user_id:
        raise NotFound("That market is not on your watchlist.")
    return entry


def remove_entry(user_id: int, entry_id: int) -> None:
    db.session.delete(_own_entry(user_id, entry_id))
    signal.mark_changed(db.session)
    db.session.commit()


def move_entry(user_id: int, entry_id: int, direction: str) -> None:
    """Swap the entry with its neighbour above ("up") or below ("down"); at an end, nothing moves."""
    if direction not in ("up", "down"):
        raise DomainError("Move a market up or down.")
    entry = _own_entry(user_id, entry_id)
    rows = entries(user_id)
    index = rows.index(entry)
    other = index - 1 if direction == "up" else index + 1
    if not 0 <= other < len(rows):
        return
    # renumber the whole list, then swap: positions stay distinct even after old races
    order = [row.id for row in rows]
    order[index], order[other] = order[other], order[index]
    for position, row_id in enumerate(order, start=1):
        db.session.execute(update(WatchlistEntry).where(WatchlistEntry.id == row_id).values(position=position))
    db.session.commit()


# ---- the rows the dashboard shows -------------------------------------------------------

@dataclass(frozen=True)
class WatchRow:
    entry_id: int
    symbol: str
    name: str
    precision: int
    active: bool
    bid: str | None
    ask: str | None
    spark: str  # SVG polyline points, "" when there is no history yet
    first: bool
    last: bool


def _spark_points(values: list[Decimal]) -> str:
    if len(values) < 2:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or Decimal(1)
    step = Decimal(SPARK_WIDTH) / (len(values) - 1)
    return " ".join(f"{float(i * step):.1f},{float(SPARK_HEIGHT - (v - low) / span * SPARK_HEIGHT):.1f}"
                    for i, v in enumerate(values))


def sparkline_closes(symbols: list[str], now_ms: int) -> dict[str, list[Decimal]]:
    """Each symbol's 1-minute closes over the last hour, in one query over the stored candles."""
    if not symbols:
        return {}
    since = bucket(now_ms // 1000 - SPARK_SECONDS, MINUTE)
    closes: dict[str, list[Decimal]] = {symbol: [] for symbol in symbols}
    query = (select(Candle.symbol, Candle.close)
             .where(Candle.symbol.in_(symbols), Candle.resolution == MINUTE, Candle.start_s >= since)
             .order_by(Candle.symbol, Candle.start_s))
    for symbol, close in db.session.execute(query):
        closes[symbol].append(close)
    return closes


def watch_rows(user_id: int) -> list[WatchRow]:
    rows = db.session.execute(
        select(WatchlistEntry.id, Market.symbol, Market.name, Market.precision, Market.active)
        .join(Market, Market.symbol == WatchlistEntry.symbol)
        .where(WatchlistEntry.user_id == user_id)
        .order_by(WatchlistEntry.position, WatchlistEntry.id)).all()
    closes = sparkline_closes([r.symbol for r in rows], quotes.now_ms())
    result = []
    for i, (entry_id, symbol, name, precision, active) in enumerate(rows):
        quote = quotes.latest_quote(symbol)
        quantum = Decimal(1).scaleb(-precision)
        line = closes.get(symbol, []) + ([quote.mid] if quote is not None else [])
        result.append(WatchRow(entry_id, symbol, name, precision, active,
                               str(quote.bid.quantize(quantum)) if quote else None,
                               str(quote.ask.quantize(quantum)) if quote else None,
                               _spark_points(line), i == 0, i == len(rows) - 1))
    return result


def addable_markets(user_id: int) -> list[Market]:
    taken = set(symbols_of(user_id))
    from ..market.service import list_markets

    return [m for m in list_markets(active_only=True) if m.symbol not in taken]
