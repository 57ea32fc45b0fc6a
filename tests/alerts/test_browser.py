"""A price alert in a real browser (Debian chromium) against the app as a real process with
its own price feed: set alerts either side of the price on /alerts, see one fire
as a toast while the page stays open, the bell's count move to 1, and the notification
appear live at the top of /notifications open in another tab (then marked read there)."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
import requests
from playwright.sync_api import expect

from tests.conftest import ARTIFACTS
from tests.support.browser import sign_up
from tests.support.live import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SYMBOL = "VOLATILITY_100"  # the liveliest simulated market: a crossing of the price comes within seconds


def live_mids(base: str, count: int) -> list[Decimal]:
    """The next `count` different mids of SYMBOL, as the API serves them."""
    mids: list[Decimal] = []
    for _ in range(count * 30):
        mid = requests.get(f"{base}/api/markets/{SYMBOL}/quote", timeout=5).json()["mid"]
        if mid and (not mids or Decimal(mid) != mids[-1]):
            mids.append(Decimal(mid))
            if len(mids) == count:
                return mids
        time.sleep(0.05)
    raise AssertionError(f"{SYMBOL}: only {len(mids)} quotes in {count * 1.5:.0f} s")


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
    # Two alerts a few of the market's steps either side of the price: the random walk
    # leaves such a band within seconds, whereas a crossing alert set at the price waits for
    # the walk to come back, which can take longer than any timeout. The alert that did not
    # fire is deleted as soon as the other one does.
    mids = live_mids(base, 12)
    step = max(sum(abs(b - a) for a, b in zip(mids, mids[1:], strict=False)) / (len(mids) - 1), Decimal("0.001"))
    band = (step * 3).quantize(Decimal("0.001"))
    levels = {}
    for kind, words in (("ABOVE", "rises to"), ("BELOW", "falls to")):
        for _ in range(5):
            mid = live_mids(base, 1)[-1]
            level = mid + band if kind == "ABOVE" else mid - band
            page.get_by_test_id("alert-symbol").select_option(SYMBOL)
            page.get_by_test_id("alert-kind").select_option(kind)
            page.get_by_test_id("alert-level").fill(f"{level:.3f}")
            page.get_by_test_id("alert-submit").click()
            page.wait_for_load_state()
            if page.get_by_test_id("alert-row").filter(has_text=f"Volatility 100 Index {words} {level:.3f}").count():
                levels[kind] = level
                break
            # the price got there first: refused, and said so
            assert "already" in page.get_by_test_id("alert-refusal").inner_text()
    assert set(levels) == {"ABOVE", "BELOW"}
    assert "EUR/USD OTC rises to 5.00000 or above, once" in page.get_by_test_id("alerts").inner_text()

    toast = page.get_by_test_id("alert-toast").first
    toast.wait_for(timeout=60_000)
    said = toast.inner_text()
    rose = " rose to " in said
    level, words, other = (levels["ABOVE"], "rises to", "falls to") if rose else (levels["BELOW"], "falls to", "rises to")
    assert "Volatility 100 Index" in said and f"your alert at {level:.3f}" in said
    page.screenshot(path=str(ARTIFACTS / "alerts-toast.png"))
    unfired = page.get_by_test_id("alert-row").filter(has_text=f"Volatility 100 Index {other} ")
    unfired.get_by_test_id("alert-delete").click()  # the other side of the band
    expect(unfired).to_have_count(0)
    # Almost always one fire; if the walk reached the other side before the delete, two. Every
    # count below follows what the server recorded.
    fired = int(page.get_by_test_id("unread-count").inner_text())  # rendered after the delete: final
    assert fired in (1, 2)

    rows = inbox.get_by_test_id("notification")
    expect(rows).to_have_count(fired, timeout=10_000)  # added at the top without a reload
    row = rows.filter(has_text=f"your alert at {level:.3f}")
    assert row.get_attribute("data-live") == "1" and " UTC" in row.inner_text()
    assert inbox.get_by_test_id("no-notifications").count() == 0
    assert inbox.get_by_test_id("unread").inner_text() == f"{fired} unread"
    assert inbox.get_by_test_id("unread-count").inner_text() == str(fired)
    assert inbox.get_by_test_id("mark-all-read").is_visible()
    inbox.screenshot(path=str(ARTIFACTS / "alerts-notifications-live.png"))
    row.get_by_test_id("mark-read").click()  # the live row's own form (and CSRF token)
    inbox.wait_for_url(f"{base}/notifications")
    assert inbox.get_by_test_id("unread").inner_text() == f"{fired - 1} unread"

    page.get_by_test_id("bell").click()
    page.wait_for_url(f"{base}/notifications")
    assert page.get_by_test_id("notification").count() == fired
    assert f"your alert at {level:.3f}" in page.get_by_test_id("notification").last.inner_text()  # the first fire
    assert page.get_by_test_id("unread-count").inner_text() == str(fired - 1)
    assert page.get_by_test_id("mark-read").count() == fired - 1
    page.goto(f"{base}/alerts")
    assert "Fired" in page.get_by_test_id("alert-row").filter(has_text=f"Volatility 100 Index {words} ").inner_text()
    assert problems == []
