"""A new trader in a real browser: pick a market, place UP and DOWN, watch them count down
and settle with the payout and proof."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from edutradex.auth.models import User
from edutradex.binary.models import Trade
from edutradex.extensions import db
from tests.support.browser import sign_up

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_place_up_and_down_watch_them_settle(binary_live, page):
    server, checker = binary_live
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_up(page, server.url, "Browser Trader", "trader@example.com")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Trade").click()
    page.wait_for_url("**/trade/*")
    page.get_by_test_id("symbol-picker").select_option("VOLATILITY_50")
    page.wait_for_url("**/trade/VOLATILITY_50")
    expect(page.get_by_test_id("live-price")).not_to_have_text("—", timeout=15000)

    page.get_by_role("button", name="25.00").click()
    expect(page.get_by_test_id("payout-text")).to_contain_text("25.00 → payout 45.00 if right")
    page.get_by_label("5s", exact=True).check()
    page.get_by_test_id("btn-up").click()
    expect(page.get_by_test_id("open-trade")).to_have_count(1)
    page.get_by_test_id("stake").fill("10")
    page.get_by_test_id("btn-down").dblclick()  # a double click places one trade
    expect(page.get_by_test_id("open-trade")).to_have_count(2)
    expect(page.get_by_test_id("demo-balance")).to_have_text("9,965.00")

    countdown = page.get_by_test_id("countdown").first
    expect(countdown).to_have_text(re.compile(r"0:0[1-5]"))
    expect(page.get_by_test_id("standing").first).to_have_text(re.compile("winning|losing|level"))

    # Settlement: the rows leave, the results arrive live, the balance moves.
    expect(page.get_by_test_id("open-trade")).to_have_count(0, timeout=20000)
    expect(page.get_by_test_id("recent-trade")).to_have_count(2)
    with checker.app_context():
        trades = db.session.scalars(select(Trade).order_by(Trade.id)).all()
        assert [t.direction for t in trades] == ["UP", "DOWN"] and all(t.status == "SETTLED" for t in trades)
        balance = db.session.get(User, trades[0].user_id).demo_balance
        assert balance == Decimal("10000.00") - 35 + sum(t.payout for t in trades)
        db.session.remove()
    expect(page.get_by_test_id("demo-balance")).to_have_text(f"{balance:,.2f}")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="History").click()
    expect(page.get_by_test_id("history-row")).to_have_count(2)
    expect(page.get_by_test_id("stat-trades")).to_have_text("2")
    page.get_by_test_id("history-row").first.locator("summary").click()
    expect(page.get_by_test_id("proof").first).to_contain_text("Exit tick")
    assert not errors
