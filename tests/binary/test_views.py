"""The trade page, placing over HTTP (HTMX and plain forms), history, stats, CSV, proof."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from edutradex.auth.models import User
from edutradex.binary.models import Trade
from edutradex.binary.service import place_trade
from edutradex.extensions import db
from tests.binary.conftest import add_tick, make_market, publish, tick_and_quote
from tests.factories import make_user
from tests.support.web import csrf_token

SYMBOL = "OTC_EUR_USD"
KEY_INPUT = re.compile(r'id="idempotency-key" name="idempotency_key" value="([^"]+)"')


@pytest.fixture
def trader(app, auth):
    with app.app_context():
        make_market(SYMBOL)
        make_market("VOLATILITY_50", name="Volatility 50 Index", market_type="SYNTHETIC", precision=2,
                    initial_price=Decimal("1000.00"))
        make_market("OTC_OFF", active=False)
        tick_id = tick_and_quote(SYMBOL, "1.10000").id
        user_id = make_user("joe@example.com").id
    auth.login()
    with app.app_context():  # fresh again after the password hashing: placements need a quote < 2 s old
        publish(SYMBOL, "1.10000", tick_id=tick_id)
    return user_id


def trades_of(app, user_id: int) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Trade).where(Trade.user_id == user_id))


def balance(app, user_id: int) -> Decimal:
    with app.app_context():
        return db.session.get(User, user_id).demo_balance


def form(client, **overrides) -> dict:
    html = client.get(f"/trade/{SYMBOL}").get_data(as_text=True)
    data = {"symbol": SYMBOL, "direction": "UP", "stake": "10.00", "duration": "60",
            "idempotency_key": KEY_INPUT.search(html).group(1)}
    data.update(overrides)
    return data


def test_trade_page_needs_login(client):
    response = client.get("/trade")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_trade_page_shows_the_panel(client, trader):
    response = client.get("/trade")
    assert response.status_code == 302 and response.headers["Location"].endswith("/trade/OTC_EUR_USD")
    html = client.get("/trade/otc_eur_usd").get_data(as_text=True)
    assert 'id="trade-chart"' in html and 'data-symbol="OTC_EUR_USD"' in html
    for label in ("5s", "15s", "30s", "1m", "2m", "5m", "15m", "1h"):
        assert f"<span>{label}</span>" in html
    assert 'data-percent="80.00"' in html and "if right" in html
    assert "Entry price" in html and "mid" in html  # the rules panel
    assert "Volatility 50 Index" in html and "OTC_OFF" not in html
    assert 'value="UP"' in html and 'value="DOWN"' in html
    assert "No open trades" in html


def test_unknown_or_inactive_market_page_is_404(client, trader):
    assert client.get("/trade/NOPE").status_code == 404
    assert client.get("/trade/OTC_OFF").status_code == 404


def test_htmx_placement_swaps_the_panel_and_regenerates_the_key(app, client, auth, trader):
    data = form(client)
    response = client.post("/trade/place", data=data, headers=auth.htmx_headers(f"/trade/{SYMBOL}"))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.count('data-testid="open-trade"') == 1  # only the new row: the page appends it
    new_key = KEY_INPUT.search(html).group(1)
    assert new_key != data["idempotency_key"] and 'hx-swap-oob="true"' in html
    assert "9,990.00" in html  # the balance, swapped out of band
    assert trades_of(app, trader) == 1 and balance(app, trader) == Decimal("9990.00")


def test_trade_fragments_carry_the_server_clock(app, client, auth, trader):
    """The page's countdowns run on the server's clock, sent with every fragment (a time
    rendered into the page goes stale while it stays open)."""
    from edutradex.market.quotes import now_ms

    headers = auth.htmx_headers(f"/trade/{SYMBOL}")
    data = form(client)
    for response in (lambda: client.post("/trade/place", data=data, headers=headers),
                     lambda: client.get("/trade/activity", headers=headers)):
        before = now_ms()
        sent = response()
        assert sent.status_code == 200
        assert before <= int(sent.headers["X-Server-Now-Ms"]) <= now_ms()


def test_replayed_form_places_one_trade(app, client, auth, trader):
    data = form(client)
    headers = auth.htmx_headers(f"/trade/{SYMBOL}")
    first = client.post("/trade/place", data=data, headers=headers)
    second = client.post("/trade/place", data=data, headers=headers)
    assert first.status_code == second.status_code == 200
    assert trades_of(app, trader) == 1 and balance(app, trader) == Decimal("9990.00")


def test_plain_form_post_redirects_to_the_page_listing_the_trade(app, client, trader):
    data = form(client, csrf_token=csrf_token(client, f"/trade/{SYMBOL}"), direction="DOWN")
    response = client.post("/trade/place", data=data)
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    # the open-trade row confirms it; no toast over the ticket
    assert page.count('data-testid="open-trade"') == 1 and 'data-direction="DOWN"' in page
    assert 'class="toast ' not in page
    assert trades_of(app, trader) == 1


def test_placement_answers_without_a_toast(app, client, auth, trader):
    response = client.post("/trade/place", data=form(client), headers=auth.htmx_headers(f"/trade/{SYMBOL}"))
    assert response.status_code == 200 and 'data-testid="open-trade"' in response.get_data(as_text=True)
    assert "toast" not in response.get_data(as_text=True)  # nothing swapped into #toasts


def error_slots(html: str) -> dict[str, str]:
    """The ticket's error slots in a fragment: slot -> message (empty when cleared)."""
    return dict(re.findall(r'id="([a-z]+)-error"[^>]*>([^<]*)</p>', html.replace("&#39;", "'")))


@pytest.mark.parametrize(("overrides", "status", "slot", "message"), [
    ({"stake": "0"}, 400, "stake", "must be more than 0"),
    ({"stake": "-10"}, 400, "stake", "must be more than 0"),
    ({"stake": "NaN"}, 400, "stake", "enter a number"),
    ({"stake": "1e309"}, 400, "stake", "enter a number"),
    ({"stake": "10.001"}, 400, "stake", "at most 2 decimal places"),
    ({"stake": "lots"}, 400, "stake", "enter a number"),
    ({"stake": "5000"}, 400, "stake", "from 1.00 to 1,000.00"),
    ({"symbol": "NOPE"}, 404, "ticket", "no market called"),
    ({"symbol": "OTC_OFF"}, 409, "ticket", "closed for trading"),
    ({"symbol": "VOLATILITY_50"}, 409, "ticket", "no live price"),
    ({"duration": "7"}, 400, "duration", "not offered"),
    ({"direction": "LEFT"}, 400, "ticket", "UP or DOWN"),
    ({"idempotency_key": ""}, 400, "ticket", "submission key"),
])
def test_bad_input_comes_back_next_to_its_field_and_changes_nothing(app, client, auth, trader, overrides, status, slot,
                                                                     message):
    response = client.post("/trade/place", data=form(client, **overrides), headers=auth.htmx_headers(f"/trade/{SYMBOL}"))
    assert response.status_code == status
    assert response.headers["HX-Reswap"] == "none"  # only the slots, out of band: no toast over the ticket
    slots = error_slots(response.get_data(as_text=True))
    assert message in slots.pop(slot)
    assert set(slots.values()) == {""}  # the other slots are cleared
    assert trades_of(app, trader) == 0 and balance(app, trader) == Decimal("10000.00")


def test_a_placed_trade_clears_the_ticket_errors(client, auth, trader):
    response = client.post("/trade/place", data=form(client), headers=auth.htmx_headers(f"/trade/{SYMBOL}"))
    assert error_slots(response.get_data(as_text=True)) == {"stake": "", "duration": "", "ticket": ""}


def test_the_ticket_has_the_error_slots_and_the_stake_limits(client, trader):
    html = client.get(f"/trade/{SYMBOL}").get_data(as_text=True)
    assert error_slots(html) == {"stake": "", "duration": "", "ticket": ""}
    assert 'aria-describedby="stake-help stake-error"' in html
    assert 'data-min-stake="1.00" data-max-stake="1000.00"' in html


def test_insufficient_balance_over_http(app, client, auth, trader):
    with app.app_context():
        db.session.get(User, trader).demo_balance = Decimal("5.00")
        db.session.commit()
    response = client.post("/trade/place", data=form(client), headers=auth.htmx_headers(f"/trade/{SYMBOL}"))
    assert response.status_code == 409 and "Insufficient balance" in error_slots(response.get_data(as_text=True))["stake"]
    assert trades_of(app, trader) == 0 and balance(app, trader) == Decimal("5.00")


def test_stale_market_over_http(app, client, auth, trader):
    from edutradex.market.quotes import now_ms
    from tests.binary.conftest import publish

    data = form(client)
    with app.app_context():
        publish(SYMBOL, "1.1", ts_ms=now_ms() - 60_000)
    response = client.post("/trade/place", data=data, headers=auth.htmx_headers(f"/trade/{SYMBOL}"))
    assert response.status_code == 409 and "stale" in response.get_data(as_text=True)
    assert trades_of(app, trader) == 0


def test_entry_on_an_old_quote_over_http_is_an_error_on_the_ticket(app, client, auth, trader):
    from edutradex.market.quotes import now_ms
    from tests.binary.conftest import publish

    data = form(client)
    with app.app_context():
        publish(SYMBOL, "1.1", ts_ms=now_ms() - app.config["ENTRY_MAX_QUOTE_AGE_MS"] - 500)
    response = client.post("/trade/place", data=data, headers=auth.htmx_headers(f"/trade/{SYMBOL}"))
    assert response.status_code == 409 and response.headers["HX-Reswap"] == "none"
    assert "Prices are updating, try again" in error_slots(response.get_data(as_text=True))["ticket"]
    assert trades_of(app, trader) == 0 and balance(app, trader) == Decimal("10000.00")
    with app.app_context():
        tick_and_quote(SYMBOL, "1.1")  # the next tick arrives: the same form goes through
    response = client.post("/trade/place", data=data, headers=auth.htmx_headers(f"/trade/{SYMBOL}"))
    assert response.status_code == 200 and trades_of(app, trader) == 1


def test_missing_csrf_is_refused(app, client, trader):
    response = client.post("/trade/place", data=form(client), headers={"HX-Request": "true"})
    assert response.status_code == 400 and "security token" in response.get_data(as_text=True)
    assert trades_of(app, trader) == 0


def settled_trades(app, user_id: int, results: list[tuple[str, str, str]]) -> list[int]:
    """Place and settle trades: (direction, stake, exit mid) from an entry of 1.10000."""
    from edutradex.binary import settlement

    ids = []
    with app.app_context():
        for i, (direction, stake, exit_mid) in enumerate(results):
            tick_and_quote(SYMBOL, "1.10000")
            trade = place_trade(user_id, SYMBOL, direction, stake, 5, f"hist-{user_id}-{i:05d}")
            add_tick(SYMBOL, trade.expires_ms, exit_mid)
            add_tick(SYMBOL, trade.expires_ms + 1, "1.10000")
            original = settlement.now_ms
            settlement.now_ms = lambda e=trade.expires_ms: e + 1
            try:
                settlement.settle_due_trades(SYMBOL, trade.expires_ms)
            finally:
                settlement.now_ms = original
            ids.append(trade.id)
    return ids


def test_history_stats_filters_and_proof(app, client, trader):
    ids = settled_trades(app, trader, [("UP", "10.00", "1.10010"), ("UP", "20.00", "1.09990"),
                                       ("DOWN", "5.00", "1.10000"), ("DOWN", "50.00", "1.09000")])
    html = client.get("/history").get_data(as_text=True)
    assert html.count('data-testid="history-row"') == 4
    stats = dict(re.findall(r'data-testid="stat-([a-z-]+)">([^<]+)<', html))
    # wins 2 (UP 10 -> +8, DOWN 50 -> +40), loss 1 (-20), tie 1 (0): net 28, best 40, worst -20
    assert stats == {"trades": "4", "win-rate": "66.7%", "net": "28.00"}
    assert "best 40.00 · worst -20.00" in html
    assert "Entry tick" in html and "Exit tick" in html and "UP wins when exit &gt; entry" in html
    wins = client.get("/history?result=WIN").get_data(as_text=True)
    assert wins.count('data-testid="history-row"') == 2 and 'data-testid="stat-trades">2<' in wins
    assert client.get("/history?symbol=VOLATILITY_50").get_data(as_text=True).count('data-testid="history-row"') == 0
    detail = client.get(f"/history/{ids[0]}").get_data(as_text=True)
    assert "1.10010" in detail and "tick #" in detail and "→ WIN" in detail
    # each tick links to the fairness period that holds it
    assert re.search(r'href="/markets/[A-Z_0-9]+/fairness/at/\d+" data-testid="fairness-link"', detail)
    assert re.search(r'href="/markets/[A-Z_0-9]+/fairness/at/\d+" data-testid="fairness-link-exit"', detail)


def test_history_pagination_and_date_filter(app, client, trader):
    settled_trades(app, trader, [("UP", "1.00", "1.2")] * 27)
    first = client.get("/history").get_data(as_text=True)
    assert first.count('data-testid="history-row"') == 25 and "Page 1 of 2" in first
    second = client.get("/history?page=2").get_data(as_text=True)
    assert second.count('data-testid="history-row"') == 2
    assert client.get("/history?date_to=2000-01-01").get_data(as_text=True).count('data-testid="history-row"') == 0


@pytest.mark.parametrize(("query", "errors"), [
    ("result=MAYBE", {"f-result": "Unknown result filter."}),
    ("date_from=yesterday", {"f-from": "From: enter a date as YYYY-MM-DD (e.g. 2025-01-31)."}),
    ("date_from=2025-02-01&date_to=2025-01-01", {"f-to": "The 'to' date is before the 'from' date."}),
    ("result=MAYBE&date_from=2025-02-01&date_to=yesterday",  # every mistake at once
     {"f-result": "Unknown result filter.", "f-to": "To: enter a date as YYYY-MM-DD (e.g. 2025-01-31)."}),
])
def test_bad_history_filters_are_shown_in_the_filter_form(app, client, trader, query, errors):
    settled_trades(app, trader, [("UP", "10.00", "1.2")])
    response = client.get(f"/history?{query}")
    assert response.status_code == 400
    html = response.get_data(as_text=True).replace("&#39;", "'")
    assert 'data-testid="history-filters"' in html and "<h1>Trade history</h1>" in html  # the page, not an error page
    shown = dict(re.findall(r'<p class="error" id="(f-[a-z]+)-error"[^>]*>([^<]*)</p>', html))
    assert shown == errors
    for field_id in errors:
        assert re.search(rf'id="{field_id}"[^>]*aria-invalid="true" aria-describedby="{field_id}-error"', html)
    assert 'data-testid="history-row"' not in html and "Correct the filter" in html
    if "date_from=2025-02-01" in query:
        assert 'value="2025-02-01"' in html  # what was typed stays in the form


def test_csv_export(app, client, trader):
    settled_trades(app, trader, [("UP", "10.00", "1.2"), ("DOWN", "10.00", "1.2")])
    response = client.get("/history.csv?result=WIN")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 1
    assert rows[0]["direction"] == "UP" and rows[0]["payout"] == "18.00" and rows[0]["exit_price"] == "1.20000000"


def test_another_users_trade_is_404_and_never_listed(app, client, auth, trader):
    with app.app_context():
        other = make_user("other@example.com").id
    [theirs] = settled_trades(app, other, [("UP", "10.00", "1.2")])
    assert client.get(f"/history/{theirs}").status_code == 404
    assert 'data-testid="history-row"' not in client.get("/history").get_data(as_text=True)
    assert client.get("/history.csv").get_data(as_text=True).count("\n") == 1


def test_profile_says_what_a_reset_does(client, trader):
    html = client.get("/profile").get_data(as_text=True)
    assert "Open rise/fall trades are cancelled" in html


def test_a_placement_reads_the_signed_in_user_once_and_shows_the_balance_its_debit_returned(app, client, auth, trader):
    """One read of the user (the session's check), then the debit, the open-trade count and
    the insert: the answer's balance is what the debit returned, not a reload after the commit."""
    from sqlalchemy import event

    statements: list[str] = []

    def sent(conn, cursor, statement, *args):
        statements.append(" ".join(statement.split()[:3]))

    headers = auth.htmx_headers(f"/trade/{SYMBOL}")
    with app.app_context():
        engine = db.engine
    for expected in ("9,990.00", "9,980.00"):
        data = form(client)
        event.listen(engine, "before_cursor_execute", sent)
        try:
            response = client.post("/trade/place", data=data, headers=headers)
        finally:
            event.remove(engine, "before_cursor_execute", sent)
        assert response.status_code == 200 and expected in response.get_data(as_text=True)
        assert [s for s in statements if "users" in s] == ["SELECT users.id AS", "UPDATE users SET"], statements
        assert statements[-1] == "INSERT INTO trades", statements  # nothing read after the commit
        statements.clear()
    assert balance(app, trader) == Decimal("9980.00")
