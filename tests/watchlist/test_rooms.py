"""In production the price authority is another process: it learns of a watchlist change
through Redis (signal.py), not through this process's counter."""

from __future__ import annotations

import pytest

from edutradex.errors import DomainError
from edutradex.watchlist import service, signal
from edutradex.watchlist.rooms import SHARED_CHECK_SECONDS, WatchlistRooms
from tests.factories import make_user


def test_a_change_committed_elsewhere_reaches_the_authority_through_redis(redis_app, monkeypatch):
    sent = []
    now = [0.0]
    rooms = WatchlistRooms(emit=lambda room, frames: sent.append((room, [f["symbol"] for f in frames])),
                           monotonic=lambda: now[0])
    with redis_app.app_context():
        user_id = make_user().id
        rooms([{"symbol": "OTC_GOLD"}])
        assert sent == []
        local = signal._local_version
        service.add_symbol(user_id, "OTC_GOLD")
        # as seen from the feed process: its own counter never moved, only the shared one
        monkeypatch.setattr(signal, "_local_version", local)
        now[0] = 0.1
        rooms([{"symbol": "OTC_GOLD"}])
        assert sent == []  # Redis is asked at most every SHARED_CHECK_SECONDS, not on every flush
        now[0] = 0.1 + SHARED_CHECK_SECONDS
        rooms([{"symbol": "OTC_GOLD"}, {"symbol": "VOLATILITY_10"}])
        assert sent == [(service.room_for(["OTC_GOLD"]), ["OTC_GOLD"])]


def test_a_failed_add_announces_nothing(redis_app):
    with redis_app.app_context():
        user_id = make_user().id
        before = signal.version()
        with pytest.raises(DomainError, match="Unknown market"):
            service.add_symbol(user_id, "NOPE")
        assert signal.version() == before
