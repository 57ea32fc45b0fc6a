"""Markets in the admin: a change applies on the feed's next tick and to the next trade,
without a restart; every change is audited; bad input changes nothing."""

import itertools
from decimal import Decimal

import pytest

from edutradex.binary.service import place_trade
from edutradex.errors import DomainError
from edutradex.extensions import db
from edutradex.market import feed as feed_module
from edutradex.market import quotes
from edutradex.market.feed import PriceFeed
from edutradex.market.models import Market
from edutradex.market.service import seed_markets, update_market

from .conftest import audit_entries

SYMBOL = "OTC_EUR_USD"
_keys = itertools.count(1)


@pytest.fixture
def markets(app):
    quotes.clear_local_quotes()
    with app.app_context():
        seed_markets()
    yield
    quotes.clear_local_quotes()


@pytest.fixture
def feed(app, markets):
    """The real price authority, driven step by step: a clock that moves one second per
    pass, and a monotonic clock that stands still so that only an announced change (not
    the periodic reload) can make it re-read the catalogue."""
    start = quotes.now_ms()
    ticks = itertools.count(1)
    with app.app_context():
        feed = PriceFeed(app, seed=11, emit=lambda symbol, frame: None,
                         clock_ms=lambda: start + 1000 * next(ticks), monotonic=lambda: 0.0, adapters=False)
        # Its clock races ahead a second per pass: a heartbeat would (rightly) report that
        # skew and pause trading, which is not what this test is about.
        feed.next_heartbeat = float("inf")
        yield feed
    # The feed's heartbeat lives in this process (the embedded default): leave none behind
    # for the health checks of later tests.
    feed_module._local_heartbeat.clear()


def next_quote(app, feed) -> quotes.Quote:
    with app.app_context():
        assert feed.run_once() > 0
    return quotes.latest_quote(SYMBOL)


def market(app, symbol=SYMBOL) -> Market:
    with app.app_context():
        row = db.session.scalar(db.select(Market).where(Market.symbol == symbol))
        db.session.expunge(row)
        return row


def trade(app, user_id, stake) -> tuple[Decimal, Decimal]:
    """Place a rise/fall trade; returns its (payout %, potential payout)."""
    with app.app_context():
        placed = place_trade(user_id, SYMBOL, "UP", stake, 60, f"admin-test-{next(_keys):04d}")
        return placed.payout_percent, placed.potential_payout


def test_a_change_is_visible_in_the_next_tick_and_the_next_trade(app, client, admin, target_id, feed):
    first = next_quote(app, feed)
    assert first.ask - first.bid < Decimal("0.0002")  # the default spread, 0.00010
    assert feed.simulator.walks[SYMBOL].config.volatility_mode == "MEDIUM"

    response = admin.post(f"/admin/markets/{SYMBOL}", {
        "active": "yes", "payout_percent": "91.50", "min_stake": "10.00", "max_stake": "20.00",
        "spread": "0.00500", "volatility_mode": "SPIKE", "trend_bias": "0.5000"}, htmx=True)
    assert response.status_code == 204

    # The very next tick uses the new spread and the walk the new volatility and bias.
    second = next_quote(app, feed)
    assert Decimal("0.005") <= second.ask - second.bid <= Decimal("0.00502")
    walk = feed.simulator.walks[SYMBOL]
    assert (walk.config.volatility_mode, walk.config.trend_bias) == ("SPIKE", 0.5)
    frame = feed.coalescer.pending[SYMBOL]  # what the browsers get in the next frame
    assert frame["ask"] - frame["bid"] >= 0.005 - 1e-9

    # The next trade uses the new payout and stake limits.
    with pytest.raises(DomainError, match="from 10.00 to 20.00"):
        trade(app, target_id, "5.00")
    with pytest.raises(DomainError, match="from 10.00 to 20.00"):
        trade(app, target_id, "25.00")
    assert trade(app, target_id, "10.00") == (Decimal("91.50"), Decimal("19.15"))

    [entry] = audit_entries(app, "market.update")
    assert (entry.target_type, entry.target_id) == ("market", SYMBOL)
    assert entry.after == {"payout_percent": "91.50", "min_stake": "10.00", "max_stake": "20.00",
                           "spread": "0.00500000", "volatility_mode": "SPIKE", "trend_bias": "0.5000"}
    assert entry.before["volatility_mode"] == "MEDIUM" and entry.before["payout_percent"] == "80.00"


def test_switching_a_market_off_stops_its_ticks_and_trades(app, client, admin, target_id, feed):
    next_quote(app, feed)
    assert admin.post(f"/admin/markets/{SYMBOL}", {"active": "no"}).status_code == 302
    with app.app_context():
        feed.run_once()
        assert SYMBOL not in feed.simulator.walks
    with pytest.raises(DomainError, match="closed for trading"):
        trade(app, target_id, "10.00")


@pytest.mark.parametrize("field, raw", [
    ("payout_percent", "NaN"), ("payout_percent", "0"), ("payout_percent", "1e309"), ("min_stake", "-1"),
    ("min_stake", "1.001"), ("max_stake", "0.50"), ("trend_bias", "2"), ("volatility_mode", "EXTREME"),
    ("active", "maybe"), ("spread", "abc"),
])
def test_bad_values_are_refused_and_change_nothing(app, client, admin, markets, field, raw):
    before = market(app)
    response = admin.post(f"/admin/markets/{SYMBOL}", {field: raw}, htmx=True)
    assert 400 <= response.status_code < 500
    assert response.headers["HX-Retarget"] == "#toasts"
    after = market(app)
    assert {f: getattr(after, f) for f in ("payout_percent", "min_stake", "max_stake", "trend_bias",
                                           "volatility_mode", "active", "spread")} == \
           {f: getattr(before, f) for f in ("payout_percent", "min_stake", "max_stake", "trend_bias",
                                            "volatility_mode", "active", "spread")}
    assert audit_entries(app) == []


def test_forex_markets_have_no_simulation_fields(app, client, admin, markets):
    html = client.get("/admin/markets/EUR_USD").get_data(as_text=True)
    assert 'name="payout_percent"' in html and 'name="volatility_mode"' not in html
    # a hand-made POST with a simulation field: ignored, the rest applies
    admin.post("/admin/markets/EUR_USD", {"volatility_mode": "SPIKE", "payout_percent": "70"})
    row = market(app, "EUR_USD")
    assert (row.payout_percent, row.volatility_mode) == (Decimal("70.00"), "MEDIUM")


def test_unchanged_form_records_nothing(app, client, admin, markets):
    response = admin.post(f"/admin/markets/{SYMBOL}", {"payout_percent": "80.00"})
    assert response.status_code == 302
    assert "nothing changed" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert audit_entries(app) == []


def test_list_shows_live_prices(app, client, admin, feed):
    html = client.get("/admin/markets").get_data(as_text=True)
    assert "no price yet" in html
    quote = next_quote(app, feed)
    html = client.get("/admin/markets").get_data(as_text=True)
    assert f"{quote.bid} / {quote.ask}" in html
    assert f'data-symbol="{SYMBOL}"' in html
    assert client.get("/admin/markets/NOPE").status_code == 404


def test_a_payout_above_100_percent_is_refused_with_the_limit(app, client, admin, markets):
    response = admin.post(f"/admin/markets/{SYMBOL}", {"payout_percent": "150"}, htmx=True)
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "Payout %: enter 1 to 100. A win pays the stake plus this share of it, so 100 doubles the stake." in text
    assert market(app).payout_percent == Decimal("80.00") and audit_entries(app) == []
    form = client.get(f"/admin/markets/{SYMBOL}").get_data(as_text=True)
    assert "1 to 100: a win pays the stake plus this share of it." in form


def test_messages_name_fields_by_their_labels(app, client, admin, markets):
    response = admin.post(f"/admin/markets/{SYMBOL}", {"trend_bias": "0.2", "payout_percent": "85", "active": "yes"})
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Payout %, Trend bias updated; live from the next tick." in page
    assert "payout_percent" not in page.split('id="toasts"')[1].split("</div>")[1]
    with app.app_context():
        with pytest.raises(DomainError, match="only apply") as refused:
            update_market("EUR_USD", volatility_mode="HIGH", trend_bias="0.1")
        assert "Volatility mode, Trend bias only apply" in refused.value.message
        db.session.rollback()


INSTRUMENT = ("contract_size", "lot_min", "lot_step", "lot_max", "quote_currency", "conversion_symbol")


def test_cfd_instrument_terms_are_edited_validated_and_audited(app, client, admin, markets):
    form = client.get("/admin/markets/OTC_USD_JPY").get_data(as_text=True)
    assert 'name="contract_size" value="100000"' in form and 'name="lot_step" value="0.01"' in form
    assert 'name="conversion_symbol" value="OTC_USD_JPY"' in form
    assert 'name="conversion_symbol" value=""' in client.get(f"/admin/markets/{SYMBOL}").get_data(as_text=True)

    response = admin.post("/admin/markets/VOLATILITY_10", {
        "contract_size": "5", "lot_min": "0.5", "lot_step": "0.5", "lot_max": "100", "quote_currency": "usd",
        "conversion_symbol": ""}, htmx=True)
    assert response.status_code == 204
    row = market(app, "VOLATILITY_10")
    assert (row.contract_size, row.lot_min, row.lot_step, row.lot_max, row.quote_currency, row.conversion_symbol) == (
        Decimal("5"), Decimal("0.5"), Decimal("0.5"), Decimal("100"), "USD", None)
    [entry] = audit_entries(app, "market.update")
    assert entry.before == {"contract_size": "1.0000", "lot_min": "0.1000", "lot_step": "0.1000",
                            "lot_max": "500.0000"}
    assert entry.after == {"contract_size": "5.0000", "lot_min": "0.5000", "lot_step": "0.5000", "lot_max": "100.0000"}

    # a JPY-quoted market converts through the USD/JPY market
    assert admin.post("/admin/markets/OTC_GOLD", {"quote_currency": "JPY", "conversion_symbol": "otc_usd_jpy"},
                      htmx=True).status_code == 204
    assert (market(app, "OTC_GOLD").quote_currency, market(app, "OTC_GOLD").conversion_symbol) == ("JPY",
                                                                                                   "OTC_USD_JPY")


@pytest.mark.parametrize("changes, says", [
    ({"contract_size": "0"}, "Contract size: must be more than 0"),
    ({"contract_size": "NaN"}, "Contract size: enter a number"),
    ({"lot_min": "-0.01"}, "Lot minimum: must be more than 0"),
    ({"lot_step": "0.00001"}, "Lot step: use at most 4 decimal places"),
    ({"lot_max": "1e9"}, "Lot maximum: enter a number"),
    ({"lot_max": "9999999"}, "Lot maximum: must be at most 1000000"),
    ({"lot_min": "60"}, "Lot maximum must be at least the lot minimum"),
    ({"lot_min": "0.015", "lot_step": "0.01"}, "multiples of the lot step"),
    ({"quote_currency": "JP"}, "Quote currency: three letters"),
    ({"quote_currency": "JPY"}, "needs the USD/JPY market"),
    ({"quote_currency": "JPY", "conversion_symbol": "OTC_GBP_USD"}, "the USD/JPY market"),
    ({"quote_currency": "JPY", "conversion_symbol": "USD_JPYX"}, "the USD/JPY market"),
    ({"conversion_symbol": "OTC_USD_JPY"}, "leave it empty for a market quoted in USD"),
])
def test_bad_instrument_terms_are_refused_and_change_nothing(app, client, admin, markets, changes, says):
    before = market(app)
    response = admin.post(f"/admin/markets/{SYMBOL}", changes, htmx=True)
    assert response.status_code == 400
    assert says in response.get_data(as_text=True)
    after = market(app)
    assert {f: getattr(after, f) for f in INSTRUMENT} == {f: getattr(before, f) for f in INSTRUMENT}
    assert audit_entries(app) == []
