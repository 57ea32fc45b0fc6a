"""The Markets pages in a real browser against the embedded default (feed in the web process)."""

from __future__ import annotations

import pytest

from tests.support.live import LiveServer

from .test_multiprocess import prepare_database

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def embedded(tmp_path):
    server = LiveServer(tmp_path / "live", FEED_TICK_INTERVAL_MS="200")
    prepare_database(server.env)
    server.start()
    yield server
    server.stop()


def test_markets_page_shows_live_prices_and_filters(embedded, page):
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(embedded.url + "/markets")
    bid = page.locator('tr[data-symbol="VOLATILITY_100"] [data-role=bid]')
    first = bid.inner_text()
    page.wait_for_function("""(first) => {
        const el = document.querySelector('tr[data-symbol="VOLATILITY_100"] [data-role=bid]');
        return el && el.textContent !== first && el.textContent !== '—';
    }""", arg=first)
    assert page.locator('tr[data-symbol="EUR_USD"] [data-role=status]').first.inner_text() == "Unavailable"
    page.click('.market-filter a[data-type="SYNTHETIC"]')
    assert page.locator('tr[data-symbol="OTC_GOLD"]').is_hidden()
    assert page.locator('tr[data-symbol="VOLATILITY_10"]').is_visible()
    assert not errors, errors


def test_chart_page_draws_history_and_updates_live(embedded, page):
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(embedded.url + "/markets/VOLATILITY_50?resolution=1s")
    page.wait_for_selector("#market-chart canvas")
    page.wait_for_function("() => document.querySelector('.market-chart-legend').textContent.includes('C ')")
    mid = page.locator("[data-role=mid]")
    first = mid.inner_text()
    page.wait_for_function("(first) => document.querySelector('[data-role=mid]').textContent !== first", arg=first)
    # the module's API, as the trade page uses it
    result = page.evaluate("""() => new Promise((resolve) => {
        const chart = window.EduTradeX.marketChart;
        const line = chart.addPriceLine({price: 100, color: '#16c784', title: 'Entry'});
        const stop = chart.onTick((tick) => { stop(); chart.removePriceLine(line);
            resolve({symbol: tick.symbol, keys: Object.keys(tick).sort()}); });
    })""")
    assert result["symbol"] == "VOLATILITY_50"
    assert {"symbol", "bid", "ask", "mid", "ts_ms"} <= set(result["keys"])
    page.click('.resolution-bar [data-resolution="5m"]')
    page.wait_for_function("() => window.location.search.includes('resolution=5m')")
    page.evaluate("window.EduTradeX.marketChart.setSymbol('VOLATILITY_10')")
    page.wait_for_function("() => document.querySelector('.market-chart-legend').textContent.includes('VOLATILITY_10')")
    assert not errors, errors
