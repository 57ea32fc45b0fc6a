"""Connection state in a real browser: every page with prices says Live while the socket
is up, Reconnecting when it drops, Offline when it stays down, and Live again once the
server is back, so frozen prices never look live."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.support.browser import sign_up
from tests.support.live import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def server(tmp_path):
    server = LiveServer(tmp_path / "live", FEED_STALE_AFTER_SECONDS="4", SEED_BACKFILL_HOURS="0").prepare().start()
    yield server
    server.stop()


@pytest.mark.parametrize("path", ["/markets", "/markets/VOLATILITY_10", "/trade/VOLATILITY_10"])
def test_pages_with_prices_show_the_live_connection(server, page, path):
    sign_up(page, server.url, "Live Watcher", "watcher@example.com")
    page.goto(server.url + path)
    state = page.get_by_test_id("connection-state")
    expect(state).to_have_count(1)
    expect(state).to_have_text("Live")
    expect(state).to_have_attribute("data-state", "live")


def test_connection_goes_reconnecting_offline_and_back_to_live(server, page):
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(server.url + "/markets")
    state = page.get_by_test_id("connection-state")
    expect(state).to_have_text("Live")
    server.stop()  # the server goes away: the socket drops
    expect(state).to_have_text("Reconnecting…", timeout=10000)
    assert page.evaluate("document.documentElement.getAttribute('data-connection')") == "reconnecting"
    expect(state).to_have_text("Offline", timeout=15000)  # still down after FEED_STALE_AFTER_SECONDS
    expect(state).to_have_attribute("title", "No connection to the server: prices shown are not current. Retrying…")
    server.start()
    expect(state).to_have_text("Live", timeout=30000)  # Socket.IO's retries find it again


def test_a_dropped_transport_shows_reconnecting_then_live(server, page):
    page.goto(server.url + "/markets/VOLATILITY_10")
    state = page.get_by_test_id("connection-state")
    expect(state).to_have_text("Live")
    page.evaluate("""() => {
        window.seenStates = [];
        const el = document.querySelector('[data-connection-state]');
        new MutationObserver(() => window.seenStates.push(el.getAttribute('data-state')))
            .observe(el, {attributes: true, attributeFilter: ['data-state']});
        window.EduTradeX.socket.io.engine.close();  // the network drops under the client
    }""")
    page.wait_for_function("() => window.seenStates.includes('reconnecting') && "
                           "window.EduTradeX.connectionState() === 'live'", timeout=15000)
    assert page.evaluate("window.seenStates")[-1] == "live"
