"""Live watchlists, the way the market board does it: one room per distinct list and one
message per flush carrying that list's new quotes.

The price authority calls WatchlistRooms with the frames of each flush (the feed's
"frame_listeners"). It knows every stored list: symbol -> the rooms of the lists that hold
it, re-read when a watchlist change is announced (signal.py) and every RELOAD_SECONDS as a
safety net. A flush costs one emit per list room that a flushed symbol belongs to, however
many people watch that list; lists nobody has open cost a dictionary look-up."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable

from sqlalchemy import select

from ..extensions import db, socketio
from ..message_queue import one_round_trip
from . import signal
from .models import WatchlistEntry
from .service import room_for

log = logging.getLogger(__name__)

EVENT = "watchlist_ticks"
RELOAD_SECONDS = 30.0
# How often the flush asks Redis whether another process changed a watchlist: not a round
# trip on every flush of the feed's hot loop. A change made in this process is seen at once.
SHARED_CHECK_SECONDS = 0.5


def socketio_emit_watchlist(room: str, frames: list[dict]) -> None:
    socketio.emit(EVENT, frames, to=room)


class WatchlistRooms:
    def __init__(self, emit: Callable[[str, list[dict]], None] = socketio_emit_watchlist,
                 monotonic: Callable[[], float] = time.monotonic):
        self.emit = emit
        self.monotonic = monotonic
        self.version: tuple[int, int] | None = None
        self.shared_version = 0
        self.next_shared_check = 0.0
        self.next_reload = 0.0
        self.rooms_of: dict[str, set[str]] = {}  # symbol -> rooms of the lists holding it

    def reload(self) -> None:
        lists: dict[int, set[str]] = defaultdict(set)
        try:
            for user_id, symbol in db.session.execute(select(WatchlistEntry.user_id, WatchlistEntry.symbol)):
                lists[user_id].add(symbol)
        finally:
            db.session.remove()
        rooms_of: dict[str, set[str]] = defaultdict(set)
        for symbols in lists.values():
            room = room_for(symbols)
            for symbol in symbols:
                rooms_of[symbol].add(room)
        self.rooms_of = dict(rooms_of)
        self.next_reload = self.monotonic() + RELOAD_SECONDS

    def _refresh(self) -> None:
        now = self.monotonic()
        if now >= self.next_shared_check:
            self.shared_version = signal.shared_version()
            self.next_shared_check = now + SHARED_CHECK_SECONDS
        version = (signal.local_version(), self.shared_version)
        if version != self.version or now >= self.next_reload:
            self.version = version
            self.reload()

    def __call__(self, frames: list[dict]) -> None:
        self._refresh()
        batches: dict[str, list[dict]] = defaultdict(list)
        for frame in frames:
            for room in self.rooms_of.get(frame["symbol"], ()):
                batches[room].append(frame)
        with one_round_trip():  # with the Redis queue: one pipeline for every list's message
            for room, batch in batches.items():
                self.emit(room, batch)
