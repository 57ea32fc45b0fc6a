"""Subscribing to live ticks over Socket.IO."""

from __future__ import annotations

from decimal import Decimal

from edutradex.extensions import socketio
from edutradex.market import quotes
from edutradex.market.feed import socketio_emit

from .conftest import FeedHarness


def rooms_of(sio_client) -> set[str]:
    manager = socketio.server.manager
    return set(manager.get_rooms(manager.sid_from_eio_sid(sio_client.eio_sid, "/"), "/"))


def events(sio_client, name):
    return [m["args"][0] for m in sio_client.get_received() if m["name"] == name]


def test_subscribe_joins_the_symbol_room_and_gets_frames(seeded, client):
    sio = socketio.test_client(seeded, flask_test_client=client)
    sio.emit("subscribe", {"symbol": "VOLATILITY_50"})
    assert "ticks:VOLATILITY_50" in rooms_of(sio)
    assert events(sio, "subscribed") == [{"symbol": "VOLATILITY_50"}]
    with seeded.app_context():
        socketio_emit("VOLATILITY_50", {"symbol": "VOLATILITY_50", "mid": 100.5})
        socketio_emit("VOLATILITY_10", {"symbol": "VOLATILITY_10", "mid": 99.5})
    assert events(sio, "tick") == [{"symbol": "VOLATILITY_50", "mid": 100.5}]
    sio.emit("unsubscribe", {"symbol": "VOLATILITY_50"})
    assert "ticks:VOLATILITY_50" not in rooms_of(sio)
    with seeded.app_context():
        socketio_emit("VOLATILITY_50", {"symbol": "VOLATILITY_50", "mid": 100.6})
    assert events(sio, "tick") == []


def test_subscribe_sends_the_latest_quote_at_once(seeded, client):
    with seeded.app_context():
        quotes.publish_quote(quotes.Quote("OTC_GOLD", Decimal("2049.85"), Decimal("2050.15"), Decimal("2050.00"),
                                          None, 1_700_000_000_000, "SIM"))
    sio = socketio.test_client(seeded, flask_test_client=client)
    sio.emit("subscribe", {"symbol": "OTC_GOLD"})
    frames = events(sio, "tick")
    assert frames[0]["mid"] == 2050.0 and frames[0]["precision"] == 2


def test_unknown_or_malformed_subscriptions_get_an_error_and_no_room(seeded, client):
    sio = socketio.test_client(seeded, flask_test_client=client)
    sio.emit("subscribe", {"symbol": "NOPE"})
    assert events(sio, "error") == [{"event": "subscribe", "symbol": "NOPE", "message": "Unknown market 'NOPE'."}]
    for payload in ({"symbol": "x" * 500}, {"symbol": 5}, {}, "OTC_GOLD", None, ["OTC_GOLD"]):
        sio.emit("subscribe", payload)
        errors = events(sio, "error")
        assert len(errors) == 1 and errors[0]["message"], payload
    assert not any(room.startswith("ticks:") for room in rooms_of(sio))


def test_the_feed_reaches_subscribers_coalesced(seeded, client, clock):
    sio = socketio.test_client(seeded, flask_test_client=client)
    sio.emit("subscribe", {"symbol": "VOLATILITY_100"})
    sio.get_received()
    harness = FeedHarness(seeded, clock)
    harness.feed.coalescer.emit = socketio_emit
    harness.run(40)  # 2 s
    frames = events(sio, "tick")
    assert 3 <= len(frames) <= 5
    assert {f["symbol"] for f in frames} == {"VOLATILITY_100"}
    assert set(frames[0]) >= {"symbol", "bid", "ask", "mid", "ts_ms", "high", "low", "precision"}


def test_board_subscription_gets_every_quote_then_one_message_per_flush(seeded, client):
    from edutradex.market.feed import socketio_emit_board

    with seeded.app_context():
        for symbol, mid in (("OTC_GOLD", "2050.00"), ("VOLATILITY_10", "100.00")):
            quotes.publish_quote(quotes.Quote(symbol, Decimal(mid), Decimal(mid), Decimal(mid), None,
                                              1_700_000_000_000, "SIM"))
    sio = socketio.test_client(seeded, flask_test_client=client)
    sio.emit("subscribe_board")
    assert "ticks:board" in rooms_of(sio)
    received = sio.get_received()
    snapshot = [m["args"][0] for m in received if m["name"] == "ticks"]
    assert [sorted(f["symbol"] for f in snapshot[0])] == [["OTC_GOLD", "VOLATILITY_10"]]
    with seeded.app_context():
        socketio_emit_board([{"symbol": "OTC_GOLD", "mid": 2050.5}, {"symbol": "VOLATILITY_10", "mid": 100.1}])
        socketio_emit("OTC_GOLD", {"symbol": "OTC_GOLD", "mid": 2050.5})  # a symbol room: not joined
    assert events(sio, "ticks") == [[{"symbol": "OTC_GOLD", "mid": 2050.5}, {"symbol": "VOLATILITY_10", "mid": 100.1}]]
    sio.emit("unsubscribe_board")
    assert "ticks:board" not in rooms_of(sio)
    with seeded.app_context():
        socketio_emit_board([{"symbol": "OTC_GOLD", "mid": 2051.0}])
    assert events(sio, "ticks") == []
