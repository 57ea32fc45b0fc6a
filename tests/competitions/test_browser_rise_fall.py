"""A RISE_FALL competition in a real browser (Debian chromium) against the app as a real
process (its feed, settlement clock and competition clock running): the trader joins, the
competition starts on the server's clock, the competition page leads to the rise/fall
trade page, whose header badge is the competition account; a 5-second trade is debited
from and settled back into that account, the demo balance never moves, and after the end
the result is that account's cash."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from edutradex.types import utcnow
from tests.competitions.test_browser import live_server, publish_in  # noqa: F401 - the fixture
from tests.support.browser import sign_up

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SYMBOL = "VOLATILITY_50"
USD = re.compile(r"^([\d,]+\.\d\d) USD$")


def usd(text: str) -> Decimal:
    return Decimal(USD.match(text.strip()).group(1).replace(",", ""))


def test_trade_rise_fall_with_the_competition_account(live_server, page):  # noqa: F811
    base = live_server.url
    problems = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.set_default_timeout(20000)
    sign_up(page, base, "Rise Trader", "rise@example.com")
    now = utcnow().replace(microsecond=0)
    cid = publish_in(live_server, name="Rise Cup", kind="RISE_FALL", entry_fee="0", prize_table=["100"],
                     guaranteed_pool="0", allowed_markets="SYNTHETIC",
                     registration_closes_at=now + timedelta(seconds=6), start_at=now + timedelta(seconds=6),
                     end_at=now + timedelta(seconds=40))
    page.goto(f"{base}/competitions/{cid}")
    page.get_by_test_id("join").click()
    page.get_by_test_id("join-submit").click()
    page.get_by_test_id("my-entry").wait_for()

    for _ in range(40):  # the competition clock starts it a moment after start_at
        page.goto(f"{base}/competitions/{cid}")
        if page.get_by_test_id("trade-rise-fall").count():
            break
        page.wait_for_timeout(500)
    page.get_by_test_id("trade-rise-fall").click()
    page.wait_for_url(re.compile(rf"/competitions/{cid}/rise-fall/\w+"))
    if not page.url.endswith(SYMBOL):
        page.goto(f"{base}/competitions/{cid}/rise-fall/{SYMBOL}")
    expect(page.get_by_test_id("live-price")).not_to_have_text("—", timeout=15000)
    badge = page.get_by_test_id("trading-account")
    assert badge.get_attribute("data-account") == "competition"
    assert badge.get_by_test_id("account-balance").inner_text() == "10,000.00 USD"
    page.get_by_test_id("competition-account").wait_for()

    page.get_by_label("5s", exact=True).check()
    page.get_by_test_id("stake").fill("25.00")
    page.get_by_test_id("btn-up").click()
    expect(page.get_by_test_id("open-trade")).to_have_count(1)
    expect(badge.get_by_test_id("account-balance")).to_have_text("9,975.00 USD")
    # settled by the server's settlement clock: the row moves to the results, the badge follows
    expect(page.get_by_test_id("recent-trade")).to_have_count(1, timeout=20000)
    expect(page.get_by_test_id("open-trade")).to_have_count(0)
    result = page.get_by_test_id("recent-trade").inner_text()
    expected = {"WIN": Decimal("10020.00"), "LOSS": Decimal("9975.00"), "TIE": Decimal("10000.00")}
    outcome = next(word for word in expected if word in result.upper())
    expect(badge.get_by_test_id("account-balance")).to_have_text(f"{expected[outcome]:,.2f} USD")

    page.goto(f"{base}/trade/{SYMBOL}")  # the demo account: untouched, no competition trade in it
    assert page.get_by_test_id("trading-account").get_attribute("data-account") == "demo"
    assert page.get_by_test_id("demo-balance").inner_text() == "10,000.00"
    assert page.get_by_test_id("open-trade").count() == 0 and page.get_by_test_id("recent-trade").count() == 0

    for _ in range(90):  # ended and settled by the competition clock after end_at
        page.goto(f"{base}/competitions/{cid}")
        if page.get_by_test_id("my-result").count():
            break
        page.wait_for_timeout(500)
    assert f"final equity {expected[outcome]:,.2f} USD" in page.get_by_test_id("my-result").inner_text()
    assert problems == []
