"""Markets in a sensible order and by name: OTC, then the volatility indices sorted
naturally, then FOREX (which needs a data provider) last; a Trade button per row; names,
not codes, in the trader's open trades, results, history and settlement messages."""

from __future__ import annotations

import re
from decimal import Decimal

from edutradex.binary.service import place_trade
from edutradex.binary.settlement import SettledTrade
from edutradex.extensions import db
from edutradex.market import quotes, service
from tests.factories import PASSWORD, make_user

ORDER = ["OTC_EUR_USD", "OTC_GBP_USD", "OTC_GOLD", "OTC_USD_JPY",
         "VOLATILITY_10", "VOLATILITY_25", "VOLATILITY_50", "VOLATILITY_100",
         "AUD_USD", "EUR_USD", "GBP_USD", "USD_CHF", "USD_JPY"]


def test_natural_key_sorts_numbers_as_numbers():
    names = ["Volatility 100 Index", "Volatility 25 Index", "Volatility 10 Index", "Volatility 50 Index"]
    assert sorted(names, key=service.natural_key) == ["Volatility 10 Index", "Volatility 25 Index",
                                                      "Volatility 50 Index", "Volatility 100 Index"]


def test_list_markets_puts_simulated_first_sorted_naturally_and_forex_last(seeded):
    with seeded.app_context():
        assert [m.symbol for m in service.list_markets()] == ORDER


def publish(symbol: str, mid: str) -> None:
    price = Decimal(mid)
    quotes.publish_quote(quotes.Quote(symbol, price, price, price, None, quotes.now_ms(), "SIM"))


def test_market_board_order_trade_buttons_and_forex_needing_a_provider(seeded, client):
    with seeded.app_context():
        for symbol in ORDER[:8]:
            publish(symbol, "100.000")
    html = client.get("/markets").get_data(as_text=True)
    rows = re.findall(r'<tr class="market-row" data-symbol="(\w+)"', html)
    assert rows == ORDER
    for chunk in html.split('<tr class="market-row"')[1:]:
        symbol = re.match(r' data-symbol="(\w+)"', chunk).group(1)
        if symbol in ORDER[:8]:
            assert f'href="/trade/{symbol}"' in chunk and ">Trade</a>" in chunk
        else:
            assert "Needs a data provider" in chunk and "/trade/" not in chunk
    assert "need a market-data provider" in html  # the status badge's explanation


def test_trade_page_picker_lists_forex_last_and_says_it_needs_a_provider(seeded, client, auth):
    with seeded.app_context():
        make_user("joe@example.com")
        db.session.remove()
    auth.login("joe@example.com", PASSWORD)
    html = client.get("/trade/EUR_USD").get_data(as_text=True)
    picker = re.search(r'<select id="symbol-picker".*?</select>', html, re.S).group(0)  # not the alert form's selects
    options = re.findall(r'<option value="(\w+)"', picker)
    assert options == ORDER
    assert re.findall(r'<optgroup label="(\w+)"', html) == ["OTC", "SYNTHETIC", "FOREX"]
    assert "EUR/USD (needs a data provider)" in html
    assert "trading opens with the first tick" not in html
    assert "EUR/USD uses real prices, which need a market-data provider" in html


def test_open_trades_results_history_and_settlement_use_market_names(seeded, client, auth):
    with seeded.app_context():
        user_id = make_user("joe@example.com").id
        publish("VOLATILITY_50", "100.000")
        place_trade(user_id, "VOLATILITY_50", "UP", "10", 60, "names-key-1")
        db.session.remove()
    auth.login("joe@example.com", PASSWORD)
    trade_page = client.get("/trade/OTC_GOLD").get_data(as_text=True)
    open_row = trade_page.split('data-testid="open-trade"')[1].split("</li>")[0]
    assert "Volatility 50 Index" in open_row and "VOLATILITY_50" not in open_row.split(">", 1)[1]
    history = client.get("/history").get_data(as_text=True)
    row = history.split('data-testid="history-row"')[1].split("</tr>")[0]
    assert '<td data-label="Market">Volatility 50 Index</td>' in row
    assert '<option value="VOLATILITY_50" >Volatility 50 Index</option>' in history
    with seeded.app_context():
        event = SettledTrade(id=1, user_id=user_id, symbol="VOLATILITY_50", direction="UP", stake=Decimal("10"),
                             result="WIN", rule="COMPARE", payout=Decimal("18"), entry_price=Decimal("100"),
                             exit_price=Decimal("101"), exit_tick_id=2, exit_ts_ms=3, expires_ms=3).as_event()
    assert event["market_name"] == "Volatility 50 Index" and event["symbol"] == "VOLATILITY_50"
