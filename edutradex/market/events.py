"""Live ticks over Socket.IO: a client joins room ticks:<SYMBOL> by subscribing to a symbol
from the catalogue. The feed loop emits coalesced frames to that room (see feed.py)."""

from __future__ import annotations

from flask_socketio import emit, join_room, leave_room
from sqlalchemy import select

from ..extensions import db, socketio
from . import quotes
from .models import Market

MAX_SUBSCRIPTIONS = 50  # per connection: a page watches a handful of symbols


def _market(data) -> Market | None:
    symbol = data.get("symbol") if isinstance(data, dict) else None
    if not isinstance(symbol, str) or not 0 < len(symbol) <= 32:
        return None
    return db.session.scalar(select(Market).where(Market.symbol == symbol))


def _rooms() -> set[str]:
    from flask import request

    sid = request.sid
    return {r for r in socketio.server.manager.get_rooms(sid, "/") if r.startswith("ticks:")}


@socketio.on("subscribe")
def on_subscribe(data=None):
    from .feed import room, tick_frame

    market = _market(data)
    if market is None:
        symbol = data.get("symbol") if isinstance(data, dict) else None
        emit("error", {"event": "subscribe", "symbol": symbol if isinstance(symbol, str) else None,
                       "message": f"Unknown market {str(symbol)[:32]!r}." if symbol else "Say which market to watch."})
        return
    if room(market.symbol) not in _rooms() and len(_rooms()) >= MAX_SUBSCRIPTIONS:
        emit("error", {"event": "subscribe", "symbol": market.symbol,
                       "message": f"Watching too many markets at once (at most {MAX_SUBSCRIPTIONS})."})
        return
    join_room(room(market.symbol))
    emit("subscribed", {"symbol": market.symbol})
    quote = quotes.latest_quote(market.symbol)
    if quote is not None:
        emit("tick", tick_frame(quote, market.precision))


@socketio.on("subscribe_board")
def on_subscribe_board(data=None):
    """The whole board in one room: every symbol's coalesced frames, one message per flush.
    The current quotes of the active markets come back at once."""
    from .feed import BOARD_EVENT, BOARD_ROOM, tick_frame

    join_room(BOARD_ROOM)
    emit("subscribed", {"board": True})
    markets = db.session.execute(select(Market.symbol, Market.precision).where(Market.active.is_(True))).all()
    frames = [tick_frame(quote, precision) for symbol, precision in markets
              if (quote := quotes.latest_quote(symbol)) is not None]
    if frames:
        emit(BOARD_EVENT, frames)


@socketio.on("unsubscribe_board")
def on_unsubscribe_board(data=None):
    from .feed import BOARD_ROOM

    if BOARD_ROOM in _rooms():
        leave_room(BOARD_ROOM)
        emit("unsubscribed", {"board": True})


@socketio.on("unsubscribe")
def on_unsubscribe(data=None):
    from .feed import room

    symbol = data.get("symbol") if isinstance(data, dict) else None
    if isinstance(symbol, str) and room(symbol) in _rooms():
        leave_room(room(symbol))
        emit("unsubscribed", {"symbol": symbol})
