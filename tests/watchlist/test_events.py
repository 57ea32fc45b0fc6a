"""The live watchlist: ONE subscription for the whole list, its room derived on the server
from the stored list, and one message per flush carrying that list's quotes."""

from __future__ import annotations

from decimal import Decimal

from edutradex.extensions import socketio
from edutradex.market import quotes
from edutradex.watchlist import service
from edutradex.watchlist.rooms import WatchlistRooms
from tests.market.conftest import FeedHarness


def rooms_of(sio) -> set[str]:
    manager = socketio.server.manager
    return set(manager.get_rooms(manager.sid_from_eio_sid(sio.eio_sid, "/"), "/"))


def received(sio, name):
    return [m["args"][0] for m in sio.get_received() if m["name"] == name]


def add(app, user_id, *symbols):
    with app.app_context():
        for symbol in symbols:
            service.add_symbol(user_id, symbol)


def frame(symbol, mid):
    return {"symbol": symbol, "bid": mid, "ask": mid, "mid": mid, "precision": 2}


def test_one_room_from_the_stored_list_whatever_the_client_sends(app, client, users):
    add(app, users["me"], "OTC_GOLD", "VOLATILITY_10")
    with app.app_context():
        quotes.publish_quote(quotes.Quote("OTC_GOLD", Decimal("2049.85"), Decimal("2050.15"), Decimal("2050.00"),
                                          None, 1_700_000_000_000, "SIM"))
        expected = service.room_for(["OTC_GOLD", "VOLATILITY_10"])
    sio = socketio.test_client(app, flask_test_client=client)
    sio.get_received()
    sio.emit("subscribe_watchlist", {"symbols": ["VOLATILITY_100"], "room": "watchlist:someone-else"})
    assert {r for r in rooms_of(sio) if r.startswith(("watchlist:", "ticks:"))} == {expected}
    messages = sio.get_received()
    assert [m["args"][0] for m in messages if m["name"] == "subscribed"] == [{"watchlist": 2}]
    # the current quotes at once, in one message
    assert [[f["symbol"] for f in m["args"][0]] for m in messages if m["name"] == "watchlist_ticks"] == [["OTC_GOLD"]]

    # the list changes: subscribing again moves the connection to the new list's room, only
    add(app, users["me"], "VOLATILITY_50")
    sio.emit("subscribe_watchlist")
    with app.app_context():
        assert {r for r in rooms_of(sio) if r.startswith("watchlist:")} == {
            service.room_for(["OTC_GOLD", "VOLATILITY_10", "VOLATILITY_50"])}


def test_an_anonymous_connection_gets_an_error_and_no_room(app, client, users, auth):
    auth.logout()
    sio = socketio.test_client(app, flask_test_client=client)
    sio.emit("subscribe_watchlist")
    assert received(sio, "error")[0]["message"] == "Log in to watch your list."
    assert not any(r.startswith("watchlist:") for r in rooms_of(sio))


def test_one_message_per_flush_with_only_the_lists_quotes(app, client, users):
    add(app, users["me"], "OTC_GOLD", "VOLATILITY_10")
    add(app, users["other"], "VOLATILITY_50")
    sio = socketio.test_client(app, flask_test_client=client)
    sio.emit("subscribe_watchlist")
    sio.get_received()
    emitted = []
    rooms = WatchlistRooms()
    rooms.emit = lambda room, frames: (emitted.append(room), socketio.emit("watchlist_ticks", frames, to=room))
    with app.app_context():
        rooms([frame("OTC_GOLD", 1.0), frame("VOLATILITY_50", 2.0), frame("VOLATILITY_10", 3.0),
               frame("VOLATILITY_100", 4.0)])
    assert received(sio, "watchlist_ticks") == [[frame("OTC_GOLD", 1.0), frame("VOLATILITY_10", 3.0)]]
    assert len(emitted) == 2  # one per list touched (mine, the other user's), not one per symbol or tick

    # a symbol added later is routed from the next flush on (the change is announced after commit)
    add(app, users["me"], "VOLATILITY_100")
    sio.emit("subscribe_watchlist")
    sio.get_received()
    with app.app_context():
        rooms([frame("VOLATILITY_100", 5.0), frame("OTC_GOLD", 1.5)])
    assert received(sio, "watchlist_ticks") == [[frame("VOLATILITY_100", 5.0), frame("OTC_GOLD", 1.5)]]


def test_the_price_authority_sends_the_list_one_message_per_flush(app, client, users, clock):
    add(app, users["me"], "VOLATILITY_10", "VOLATILITY_100")
    sio = socketio.test_client(app, flask_test_client=client)
    sio.emit("subscribe_watchlist")
    sio.get_received()
    harness = FeedHarness(app, clock)
    harness.run(40)  # 2 s of ticks on every simulated market
    messages = received(sio, "watchlist_ticks")
    per_symbol = [symbol for symbol, _ in harness.frames]
    assert messages, "no live watchlist update"
    assert all({f["symbol"] for f in message} <= {"VOLATILITY_10", "VOLATILITY_100"} for message in messages)
    assert any({f["symbol"] for f in message} == {"VOLATILITY_10", "VOLATILITY_100"} for message in messages)
    both = per_symbol.count("VOLATILITY_10") + per_symbol.count("VOLATILITY_100")
    assert sum(len(m) for m in messages) == both  # every frame of the list's symbols, none lost
    assert len(messages) < both  # batched: fewer messages than frames
