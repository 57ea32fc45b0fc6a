"""The live watchlist: ONE subscription for the whole list. The room is derived here from
the signed-in user's stored list (service.room_for), never from symbols the client sends;
the current quotes come back at once, then one message per flush (rooms.py)."""

from __future__ import annotations

from flask import request
from flask_login import current_user
from flask_socketio import emit, join_room, leave_room
from sqlalchemy import select

from ..extensions import db, socketio
from ..market import quotes
from ..market.models import Market
from .rooms import EVENT
from .service import room_for, symbols_of

PREFIX = "watchlist:"


@socketio.on("subscribe_watchlist")
def on_subscribe_watchlist(data=None):
    from ..market.feed import tick_frame

    if not current_user.is_authenticated:
        emit("error", {"event": "subscribe_watchlist", "message": "Log in to watch your list."})
        return
    symbols = symbols_of(current_user.id)
    room = room_for(symbols)
    for joined in socketio.server.manager.get_rooms(request.sid, "/"):
        if joined.startswith(PREFIX) and joined != room:
            leave_room(joined)
    emit("subscribed", {"watchlist": len(symbols)})
    if room is None:
        return
    join_room(room)
    markets = db.session.execute(select(Market.symbol, Market.precision)
                                 .where(Market.symbol.in_(symbols), Market.active.is_(True))).all()
    frames = [tick_frame(quote, precision) for symbol, precision in markets
              if (quote := quotes.latest_quote(symbol)) is not None]
    if frames:
        emit(EVENT, frames)
