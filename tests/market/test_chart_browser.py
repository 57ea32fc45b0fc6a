"""Charts on a new install, in a real browser: `flask seed` backfilled a day of prices, so
the chart opens full; the trade page's chart switches resolution and marks the trader's
trades (entry, then the result at expiry)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.support.browser import sign_up
from tests.support.live import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def fresh_install(tmp_path):
    server = LiveServer(tmp_path / "live", FEED_TICK_INTERVAL_MS="250").prepare().start()
    yield server
    server.stop()


def chart_view(page) -> dict:
    return page.evaluate("() => window.EduTradeX.MarketChart.all[0].view()")


@pytest.mark.parametrize("width,height,in_view", [(1440, 900, 100), (390, 844, 30)])
def test_a_new_install_opens_on_a_full_chart(fresh_install, page, width, height, in_view):
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_viewport_size({"width": width, "height": height})
    page.goto(fresh_install.url + "/markets/VOLATILITY_25?resolution=1m")
    page.wait_for_function("() => window.EduTradeX.MarketChart.all.length && "
                           "window.EduTradeX.MarketChart.all[0].view().candles > 0")
    view = chart_view(page)
    assert view["candles"] >= 250, view  # 300 minutes asked for, the day was backfilled
    assert view["to"] - view["from"] >= in_view, view  # a screenful of candles, not 1-3 at the edge
    assert view["to"] >= view["candles"] - 1, view  # the newest candle is in view
    assert page.locator("[data-role=change]").inner_text() != "—"  # the 24 h change has a reference
    assert not errors, errors


def test_trade_chart_switches_resolution_and_marks_trades(fresh_install, page):
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_viewport_size({"width": 1440, "height": 900})
    sign_up(page, fresh_install.url, "Chart Trader", "charts@example.com")
    page.goto(fresh_install.url + "/trade/VOLATILITY_50")
    page.wait_for_function("() => window.EduTradeX.MarketChart.all.length && "
                           "window.EduTradeX.MarketChart.all[0].view().candles > 100")
    bar = page.get_by_test_id("resolutions")
    expect(bar.locator("[data-resolution='5s']")).to_have_attribute("aria-pressed", "true")
    bar.locator("[data-resolution='1m']").click()
    expect(bar.locator("[data-resolution='1m']")).to_have_attribute("aria-pressed", "true")
    expect(bar.locator("[data-resolution='5s']")).to_have_attribute("aria-pressed", "false")
    page.wait_for_function("() => { const v = window.EduTradeX.MarketChart.all[0].view();"
                           " return v.resolution === '1m' && v.candles >= 250; }")
    bar.locator("[data-resolution='5s']").click()
    page.wait_for_function("() => window.EduTradeX.MarketChart.all[0].view().resolution === '5s'")

    page.get_by_label("5s", exact=True).check()
    page.get_by_test_id("btn-up").click()
    expect(page.get_by_test_id("open-trade")).to_have_count(1)
    trade_id = page.get_by_test_id("open-trade").get_attribute("data-trade-id")
    page.wait_for_function("(id) => window.EduTradeX.MarketChart.all[0].tradeMarkers()"
                           ".some(m => m.id === 'entry-' + id)", arg=trade_id)
    page.wait_for_function("(id) => window.EduTradeX.MarketChart.all[0].tradeMarkers()"
                           ".some(m => m.id === 'result-' + id && ['WIN', 'LOSS', 'TIE'].includes(m.text))",
                           arg=trade_id, timeout=20000)
    markers = page.evaluate("() => window.EduTradeX.MarketChart.all[0].tradeMarkers()")
    entry = next(m for m in markers if m["id"] == f"entry-{trade_id}")
    result = next(m for m in markers if m["id"] == f"result-{trade_id}")
    assert entry["shape"] == "arrowUp" and entry["time"] <= result["time"]
    assert 5 <= result["time"] - entry["time"] <= 10  # the 5 s expiry, in 5 s candles
    # the marks survive a change of resolution
    bar.locator("[data-resolution='1m']").click()
    page.wait_for_function("(id) => { const c = window.EduTradeX.MarketChart.all[0];"
                           " return c.view().resolution === '1m' && c.tradeMarkers().some(m => m.id === 'result-' + id); }",
                           arg=trade_id)
    assert not errors, errors
