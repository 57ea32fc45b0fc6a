"""Adding, removing and reordering the watchlist, with HTMX and without JavaScript; bad input
gets a message and changes nothing; someone else's entry is a 404."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from edutradex.extensions import db
from edutradex.market import quotes
from edutradex.market.candles import Bar, store_minutes
from edutradex.market.service import update_market
from edutradex.watchlist import service
from edutradex.watchlist.models import WatchlistEntry
from tests.support.web import csrf_token


def post(client, path, htmx=True, **data):
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post(path, headers=headers, data={"csrf_token": csrf_token(client, "/"), **data})


def stored(app, user_id) -> list[str]:
    with app.app_context():
        return service.symbols_of(user_id)


def entry_ids(app, user_id) -> dict[str, int]:
    with app.app_context():
        return {e.symbol: e.id for e in db.session.scalars(select(WatchlistEntry).where(WatchlistEntry.user_id == user_id))}


def test_the_dashboard_shows_an_empty_watchlist_with_an_add_form(client, users):
    html = client.get("/").get_data(as_text=True)
    assert 'data-testid="watchlist-empty"' in html and 'data-testid="watch-add"' in html
    assert "js/watchlist.js" in html


def test_add_shows_the_market_with_its_quote_and_last_hour(app, client, users, clock):
    now_s = clock.now_ms() // 1000
    with app.app_context():
        quotes.publish_quote(quotes.Quote("OTC_GOLD", Decimal("2049.85"), Decimal("2050.15"), Decimal("2050.00"),
                                          None, clock.now_ms(), "SIM"))
        minute = now_s - now_s % 60
        store_minutes("OTC_GOLD", [Bar(minute - 60 * k, Decimal(p), Decimal(p), Decimal(p), Decimal(p))
                                   for k, p in ((3, "2040"), (2, "2060"), (1, "2045"))])
        store_minutes("OTC_GOLD", [Bar(minute - 7200, Decimal("1"), Decimal("1"), Decimal("1"), Decimal("1"))])
    response = post(client, "/watchlist", symbol=" otc_gold ")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and html.lstrip().startswith('<section class="card watchlist" id="watchlist"')
    assert stored(app, users["me"]) == ["OTC_GOLD"]
    assert 'data-symbol="OTC_GOLD"' in html and ">2049.85<" in html and ">2050.15<" in html
    # three closes of the last hour and the live mid (the candle of two hours ago is left out):
    # 2040 is the low (y=24), 2060 the high (y=0)
    points = html.split('<polyline points="', 1)[1].split('"', 1)[0].split()
    assert points == ["0.0,24.0", "33.3,0.0", "66.7,18.0", "100.0,12.0"]
    assert '<option value="OTC_GOLD">' not in html  # no longer offered


@pytest.mark.parametrize("symbol, status, message", [
    ("NOPE", 400, "Unknown market &#39;NOPE&#39;."),
    ("", 400, "Choose a market to add."),
    ("X" * 500, 400, "Unknown market"),
])
def test_an_unknown_symbol_is_refused_with_a_message(app, client, users, symbol, status, message):
    response = post(client, "/watchlist", symbol=symbol)
    assert response.status_code == status
    assert 'data-testid="watchlist-error"' in response.get_data(as_text=True)
    assert message in response.get_data(as_text=True)
    assert stored(app, users["me"]) == []


def test_an_inactive_market_or_a_duplicate_is_refused(app, client, users):
    with app.app_context():
        update_market("VOLATILITY_25", active=False)
        db.session.commit()
    response = post(client, "/watchlist", symbol="VOLATILITY_25")
    assert response.status_code == 400 and "paused" in response.get_data(as_text=True)
    assert post(client, "/watchlist", symbol="OTC_GOLD").status_code == 200
    duplicate = post(client, "/watchlist", symbol="OTC_GOLD")
    assert duplicate.status_code == 409 and "already on your watchlist" in duplicate.get_data(as_text=True)
    assert stored(app, users["me"]) == ["OTC_GOLD"]


def test_the_list_is_limited(app, client, users, monkeypatch):
    monkeypatch.setattr(service, "MAX_ENTRIES", 2)
    for symbol in ("OTC_GOLD", "VOLATILITY_10"):
        assert post(client, "/watchlist", symbol=symbol).status_code == 200
    over = post(client, "/watchlist", symbol="VOLATILITY_50")
    assert over.status_code == 400 and "at most 2 markets" in over.get_data(as_text=True)
    assert stored(app, users["me"]) == ["OTC_GOLD", "VOLATILITY_10"]


def test_the_full_limit_is_thirty(app, client, users):
    from edutradex.market.models import Market

    with app.app_context():
        for n in range(31):
            db.session.add(Market(symbol=f"OTC_TEST_{n}", name=f"Test {n}", market_type="OTC", precision=2,
                                  spread=Decimal("0.01"), initial_price=Decimal("10")))
        db.session.commit()
    for n in range(30):
        assert post(client, "/watchlist", symbol=f"OTC_TEST_{n}").status_code == 200
    assert 'data-testid="watch-add"' not in client.get("/").get_data(as_text=True)  # full: no add form
    assert post(client, "/watchlist", symbol="OTC_TEST_30").status_code == 400
    assert len(stored(app, users["me"])) == 30


def test_remove_and_reorder_the_owners_entries(app, client, users):
    for symbol in ("OTC_GOLD", "VOLATILITY_10", "VOLATILITY_50"):
        post(client, "/watchlist", symbol=symbol)
    ids = entry_ids(app, users["me"])
    assert post(client, f"/watchlist/{ids['VOLATILITY_50']}/move", direction="up").status_code == 200
    assert stored(app, users["me"]) == ["OTC_GOLD", "VOLATILITY_50", "VOLATILITY_10"]
    post(client, f"/watchlist/{ids['OTC_GOLD']}/move", direction="up")  # already first: nothing moves
    post(client, f"/watchlist/{ids['OTC_GOLD']}/move", direction="down")
    assert stored(app, users["me"]) == ["VOLATILITY_50", "OTC_GOLD", "VOLATILITY_10"]
    bad = post(client, f"/watchlist/{ids['OTC_GOLD']}/move", direction="sideways")
    assert bad.status_code == 400 and "up or down" in bad.get_data(as_text=True)
    assert post(client, f"/watchlist/{ids['OTC_GOLD']}/remove").status_code == 200
    assert stored(app, users["me"]) == ["VOLATILITY_50", "VOLATILITY_10"]
    html = client.get("/").get_data(as_text=True)
    assert html.index('data-symbol="VOLATILITY_50"') < html.index('data-symbol="VOLATILITY_10"')


def test_someone_elses_entry_is_a_404_and_stays(app, client, users):
    with app.app_context():
        theirs = service.add_symbol(users["other"], "OTC_GOLD").id
    assert post(client, f"/watchlist/{theirs}/remove").status_code == 404
    assert post(client, f"/watchlist/{theirs}/move", direction="down").status_code == 404
    assert post(client, "/watchlist/999999/remove").status_code == 404
    assert stored(app, users["other"]) == ["OTC_GOLD"]


def test_without_javascript_each_form_redirects_to_the_dashboard_with_a_message(app, client, users):
    response = post(client, "/watchlist", htmx=False, symbol="OTC_GOLD")
    assert response.status_code == 303 and response.headers["Location"].endswith("/#watchlist")
    assert "Added to your watchlist." in client.get("/").get_data(as_text=True)
    refused = post(client, "/watchlist", htmx=False, symbol="NOPE")
    assert refused.status_code == 303
    assert "Unknown market" in client.get("/").get_data(as_text=True)
    assert stored(app, users["me"]) == ["OTC_GOLD"]


def test_anonymous_visitors_cannot_change_a_watchlist(app, client):
    response = client.post("/watchlist", data={"csrf_token": csrf_token(client, "/login"), "symbol": "OTC_GOLD"})
    assert response.status_code == 302 and "/login" in response.headers["Location"]
