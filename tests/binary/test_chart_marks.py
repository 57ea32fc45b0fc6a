"""The trade chart's marks: the signed-in trader's own trades on the symbol, oldest first."""

from __future__ import annotations

from edutradex.binary.service import place_trade
from edutradex.extensions import db
from tests.binary.conftest import make_market, tick_and_quote
from tests.factories import make_user

SYMBOL = "OTC_EUR_USD"


def test_marks_list_only_my_trades_on_that_symbol(app, auth, client):
    with app.app_context():
        make_market(SYMBOL)
        make_market("OTC_GOLD", initial_price="2000")
        tick_and_quote(SYMBOL, "1.10000")
        tick_and_quote("OTC_GOLD", "2000.00")
        me = make_user("joe@example.com").id
        other = make_user("ann@example.com").id
        first = place_trade(me, SYMBOL, "UP", "10", 60, "key-one-1").id
        second = place_trade(me, SYMBOL, "DOWN", "5", 5, "key-two-2").id
        place_trade(me, "OTC_GOLD", "UP", "10", 60, "key-three-3")
        place_trade(other, SYMBOL, "UP", "10", 60, "key-four-4")
        db.session.remove()
    assert client.get(f"/trade/{SYMBOL}/marks").status_code == 302  # login first
    auth.login()
    body = client.get(f"/trade/{SYMBOL.lower()}/marks").get_json()
    assert [t["id"] for t in body["trades"]] == [first, second]
    mark = body["trades"][1]
    assert mark["direction"] == "DOWN" and mark["status"] == "OPEN" and mark["result"] is None
    assert mark["entry_price"] == "1.10000000" and 5000 <= mark["expires_ms"] - mark["entry_ms"] < 65000
