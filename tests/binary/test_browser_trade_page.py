"""The trade page in a real browser: the countdown runs on the server's clock, placing
shows no toast while settlements are announced on every page, and errors sit next to
their field."""

from __future__ import annotations

import math
import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from edutradex.auth.models import User
from edutradex.binary.models import Trade
from edutradex.extensions import db
from tests.support.browser import sign_up

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SYMBOL = "VOLATILITY_50"
SETTLED_UP_10 = re.compile(r"UP 10\.00: (WIN|LOSS|TIE)")


def open_trade_page(page, server, email: str) -> None:
    sign_up(page, server.url, "Browser Trader", email)
    page.goto(f"{server.url}/trade/{SYMBOL}")
    expect(page.get_by_test_id("live-price")).not_to_have_text("—", timeout=15000)


def shown_seconds(text: str) -> int:
    minutes, seconds = text.split(":")
    return int(minutes) * 60 + int(seconds)


DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(params=[pytest.param(DESKTOP, id="desktop"), pytest.param(PHONE, id="phone")])
def sized_page(browser, request):
    """The page at a desktop and at a phone size (the phone one with touch, as on a phone)."""
    phone = request.param is PHONE
    context = browser.new_context(viewport=request.param, is_mobile=phone, has_touch=phone)
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


def test_countdown_is_right_after_time_on_the_page(binary_live, sized_page):
    """A page rendered 20 s ago must not shift the countdown by 20 s (it showed 0:36 for a
    15 s trade): the clock comes with each placement response. At a desktop and a phone size."""
    server, checker = binary_live
    page = sized_page
    open_trade_page(page, server, "clock@example.com")
    page.wait_for_timeout(20_000)
    page.get_by_label("15s", exact=True).check()
    page.get_by_test_id("btn-up").click()
    expect(page.get_by_test_id("open-trade")).to_have_count(1)
    with checker.app_context():
        expires_ms = db.session.scalar(select(Trade.expires_ms))
        db.session.remove()

    expect(page.get_by_test_id("countdown")).to_have_text(re.compile(r"\d+:\d\d"))  # drawn by the page's timer
    for pause_ms in (0, 4_000, 4_000):
        page.wait_for_timeout(pause_ms)
        text, browser_now_ms = page.evaluate(
            "() => [document.querySelector('[data-testid=countdown]').textContent, Date.now()]")
        # The browser and the server share this machine's clock: the true time left, shown
        # rounded up to the second by a display refreshed every 200 ms.
        left = (expires_ms - browser_now_ms) / 1000
        assert abs(shown_seconds(text) - math.ceil(left)) <= 1, f"countdown {text} with {left:.1f} s left"


def test_countdown_is_right_after_coming_back_to_the_page(binary_live, page):
    """Back to the trade page from another page: the page may come from the browser's
    cache, rendered when it was first visited."""
    server, checker = binary_live
    open_trade_page(page, server, "back@example.com")
    page.get_by_label("30s", exact=True).check()
    page.get_by_test_id("btn-up").click()
    expect(page.get_by_test_id("open-trade")).to_have_count(1)
    with checker.app_context():
        expires_ms = db.session.scalar(select(Trade.expires_ms))
        db.session.remove()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="History").click()
    expect(page.get_by_test_id("history-row")).to_have_count(1)
    page.wait_for_timeout(8_000)
    page.go_back()
    expect(page.get_by_test_id("open-trade")).to_have_count(1)
    page.wait_for_timeout(1_000)
    text, browser_now_ms = page.evaluate(
        "() => [document.querySelector('[data-testid=countdown]').textContent, Date.now()]")
    left = (expires_ms - browser_now_ms) / 1000
    assert abs(shown_seconds(text) - math.ceil(left)) <= 1, f"countdown {text} with {left:.1f} s left"


def overlaps(a: dict, b: dict) -> bool:
    return a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"] and \
        a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"]


def place_5s_trade(page) -> None:
    page.get_by_label("5s", exact=True).check()
    page.get_by_test_id("btn-up").click()


def test_placing_shows_no_toast_and_settlements_are_announced_on_every_page(binary_live, sized_page):
    server, _ = binary_live
    page = sized_page
    open_trade_page(page, server, "toasts@example.com")

    place_5s_trade(page)
    expect(page.get_by_test_id("open-trade")).to_have_count(1)  # the row is the confirmation
    page.wait_for_timeout(500)
    expect(page.locator("#toasts .toast")).to_have_count(0)

    # Settled while on the trade page: a small toast that leaves UP and DOWN uncovered.
    toast = page.get_by_test_id("settlement-toast")
    expect(toast).to_have_count(1, timeout=20000)
    expect(toast).to_contain_text(SETTLED_UP_10)
    box = toast.bounding_box()
    for button in ("btn-up", "btn-down"):
        assert not overlaps(box, page.get_by_test_id(button).bounding_box()), f"the toast covers {button}"
    toast.get_by_role("button", name="Dismiss").click()
    expect(toast).to_have_count(0)

    # Settled while on another page: announced there.
    place_5s_trade(page)
    expect(page.get_by_test_id("open-trade")).to_have_count(1)
    page.goto(server.url + "/history")
    page.wait_for_function("() => window.EduTradeX && window.EduTradeX.socket && window.EduTradeX.socket.connected")
    expect(page.get_by_test_id("settlement-toast")).to_contain_text(SETTLED_UP_10, timeout=20000)
    page.get_by_test_id("settlement-toast").get_by_role("button", name="Dismiss").click()
    expect(page.get_by_test_id("settlement-toast")).to_have_count(0)


def test_stake_errors_sit_next_to_the_field_and_block_up_and_down(binary_live, sized_page):
    server, checker = binary_live
    page = sized_page
    open_trade_page(page, server, "stake@example.com")
    stake, error = page.get_by_test_id("stake"), page.get_by_test_id("stake-error")
    up, down = page.get_by_test_id("btn-up"), page.get_by_test_id("btn-down")
    expect(up).to_be_enabled()

    for typed, message in (("lots", "at most 2 decimals"), ("10.001", "at most 2 decimals"), ("0", "more than zero"),
                           ("", "Enter a stake"), ("5000", "from 1.00 to 1,000.00")):
        stake.fill(typed)
        expect(error).to_contain_text(message)
        expect(stake).to_have_attribute("aria-invalid", "true")
        expect(up).to_be_disabled()
        expect(down).to_be_disabled()
        expect(page.get_by_test_id("payout-text")).to_contain_text("stake — → payout — if right")
    page.get_by_role("button", name="25.00").click()
    expect(error).to_be_hidden()
    expect(stake).to_have_attribute("aria-invalid", "false")
    expect(up).to_be_enabled()

    # The server's refusal lands in the same place, not in a toast.
    with checker.app_context():
        db.session.scalar(select(User).where(User.email == "stake@example.com")).demo_balance = 5
        db.session.commit()
        db.session.remove()
    up.click()
    expect(error).to_have_text("Insufficient balance for this stake.")
    expect(stake).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#toasts .toast")).to_have_count(0)
    expect(page.get_by_test_id("open-trade")).to_have_count(0)
    stake.fill("5")
    expect(error).to_be_hidden()
    up.click()
    expect(page.get_by_test_id("open-trade")).to_have_count(1)
