"""A price alert in a real browser (Debian chromium) against the app as a real process with
its own price feed: set a crossing alert at the price of the moment on /alerts, see it fire
as a toast while the page stays open, the bell's count move to 1, and the notification
appear live at the top of /notifications open in another tab (then marked read there)."""

from __future__ import annotations

from decimal import Decimal

import pytest
import requests

from tests.conftest import ARTIFACTS
from tests.support.browser import sign_up
from tests.support.live import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SYMBOL = "VOLATILITY_100"  # the liveliest simulated market: a crossing of the price comes within seconds


@pytest.fixture
def live_server(tmp_path):
    server = LiveServer(tmp_path / "live", FEED_TICK_INTERVAL_MS="200").prepare().start()
    yield server
    server.stop()


def test_an_alert_set_on_the_page_fires_as_a_toast_and_lands_in_the_notifications(live_server, page):
    base = live_server.url
    problems = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    sign_up(page, base, "Alert Trader", "alerts@example.com")
    assert page.get_by_test_id("unread-count").inner_text() == "0"

    # the small form of the trade page (htmx): refused in place, then set
    page.goto(f"{base}/trade/OTC_EUR_USD")
    page.get_by_test_id("trade-alert").locator("summary").click()
    form = page.get_by_test_id("trade-alert")
    form.get_by_test_id("alert-level").fill("5.00000")
    form.get_by_test_id("alert-kind").select_option("BELOW")
    form.get_by_test_id("alert-submit").click()
    page.wait_for_function("() => /already below/.test(document.getElementById('alert-form-refusal').textContent)")
    form.get_by_test_id("alert-kind").select_option("ABOVE")
    # far away: never fires here
    form.get_by_test_id("alert-submit").click()
    form.get_by_test_id("alert-created").wait_for()
    assert form.get_by_test_id("alert-refusal").inner_text() == ""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "alerts-trade-form.png"))

    # a second tab on /notifications, open before the alert exists: the fire must arrive live
    inbox = page.context.new_page()
    inbox.on("pageerror", lambda exc: problems.append(str(exc)))
    inbox.goto(f"{base}/notifications")
    inbox.get_by_test_id("no-notifications").wait_for()
    assert not inbox.get_by_test_id("mark-all-read").is_visible()

    page.goto(f"{base}/alerts")
    for attempt in range(5):
        mid = None
        for _ in range(50):
            mid = requests.get(f"{base}/api/markets/{SYMBOL}/quote", timeout=5).json()["mid"]
            if mid:
                break
            page.wait_for_timeout(200)
        level = Decimal(mid) + Decimal("0.001") * attempt
        page.get_by_test_id("alert-symbol").select_option(SYMBOL)
        page.get_by_test_id("alert-kind").select_option("CROSSING")
        page.get_by_test_id("alert-level").fill(f"{level:.3f}")
        page.get_by_test_id("alert-submit").click()
        page.wait_for_load_state()
        if page.get_by_test_id("alert-row").filter(has_text="Volatility 100").count():
            break
        # exactly at the level at that moment: refused, and said so
        assert "is already at" in page.get_by_test_id("alert-refusal").inner_text()
    mine = page.get_by_test_id("alert-row").filter(has_text="Volatility 100")
    assert f"Volatility 100 Index crosses {level:.3f}, once" in mine.inner_text()
    assert "EUR/USD OTC rises to 5.00000 or above, once" in page.get_by_test_id("alerts").inner_text()

    toast = page.get_by_test_id("alert-toast")
    toast.wait_for(timeout=60_000)
    assert "Volatility 100 Index" in toast.inner_text() and f"your alert at {level:.3f}" in toast.inner_text()
    assert page.get_by_test_id("unread-count").inner_text() == "1"
    page.screenshot(path=str(ARTIFACTS / "alerts-toast.png"))

    row = inbox.get_by_test_id("notification")
    row.wait_for(timeout=10_000)  # added at the top without a reload
    assert row.count() == 1 and row.get_attribute("data-live") == "1"
    assert f"your alert at {level:.3f}" in row.inner_text() and " UTC" in row.inner_text()
    assert inbox.get_by_test_id("no-notifications").count() == 0
    assert inbox.get_by_test_id("unread").inner_text() == "1 unread"
    assert inbox.get_by_test_id("unread-count").inner_text() == "1" and inbox.get_by_test_id("mark-all-read").is_visible()
    inbox.screenshot(path=str(ARTIFACTS / "alerts-notifications-live.png"))
    row.get_by_test_id("mark-read").click()  # the live row's own form (and CSRF token)
    inbox.wait_for_url(f"{base}/notifications")
    assert inbox.get_by_test_id("unread").inner_text() == "0 unread"

    page.get_by_test_id("bell").click()
    page.wait_for_url(f"{base}/notifications")
    assert page.get_by_test_id("notification").count() == 1
    assert f"your alert at {level:.3f}" in page.get_by_test_id("notification").inner_text()
    assert page.get_by_test_id("unread-count").inner_text() == "0" and page.get_by_test_id("mark-read").count() == 0
    page.goto(f"{base}/alerts")
    assert "Fired" in page.get_by_test_id("alert-row").filter(has_text="Volatility 100").inner_text()
    assert problems == []
