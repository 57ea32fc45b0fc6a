"""The trade page in a real browser: the countdown runs on the server's clock, placing
shows no toast while settlements are announced on every page, and errors sit next to
their field."""

from __future__ import annotations

import math

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from edutradex.binary.models import Trade
from edutradex.extensions import db
from tests.support.browser import sign_up

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SYMBOL = "VOLATILITY_50"


def open_trade_page(page, server, email: str) -> None:
    sign_up(page, server.url, "Browser Trader", email)
    page.goto(f"{server.url}/trade/{SYMBOL}")
    expect(page.get_by_test_id("live-price")).not_to_have_text("—", timeout=15000)


def shown_seconds(text: str) -> int:
    minutes, seconds = text.split(":")
    return int(minutes) * 60 + int(seconds)


def test_countdown_is_right_after_time_on_the_page(binary_live, page):
    """A page rendered 20 s ago must not shift the countdown by 20 s (it showed 0:36 for a
    15 s trade): the clock comes with each placement response."""
    server, checker = binary_live
    open_trade_page(page, server, "clock@example.com")
    page.wait_for_timeout(20_000)
    page.get_by_label("15s", exact=True).check()
    page.get_by_test_id("btn-up").click()
    expect(page.get_by_test_id("open-trade")).to_have_count(1)
    with checker.app_context():
        expires_ms = db.session.scalar(select(Trade.expires_ms))
        db.session.remove()

    for pause_ms in (0, 4_000, 4_000):
        page.wait_for_timeout(pause_ms)
        text, browser_now_ms = page.evaluate(
            "() => [document.querySelector('[data-testid=countdown]').textContent, Date.now()]")
        # The browser and the server share this machine's clock: the true time left, shown
        # rounded up to the second by a display refreshed every 200 ms.
        left = (expires_ms - browser_now_ms) / 1000
        assert abs(shown_seconds(text) - math.ceil(left)) <= 1, f"countdown {text} with {left:.1f} s left"
