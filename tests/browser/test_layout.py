"""Layout at a phone (390 px) and a desktop (1440 px) width, checked on element boxes
against the viewport: the trade page (chart on top, UP/DOWN in reach without scrolling, a
one-row header), the history as stacked cards on a phone, and no sideways scroll on the
profile and admin user pages with a long email."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from edutradex.extensions import db
from tests.binary.conftest import prepare_live
from tests.factories import PASSWORD, make_admin, make_user
from tests.support.live import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LONG_EMAIL = "a.very.long.email.address.for.testing.layouts@a-long-domain-name-for-tests.example.com"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """One live app for the module: a trader with a long email and an admin."""
    server = LiveServer(tmp_path_factory.mktemp("layout") / "live")
    checker = prepare_live(server)
    with checker.app_context():
        make_admin("admin@example.com")
        trader_id = make_user(LONG_EMAIL, name="Long Email Person").id
        db.session.remove()
    server.start()
    yield server, trader_id
    server.stop()
    with checker.app_context():
        db.engine.dispose()


@pytest.fixture(params=[pytest.param(PHONE, id="phone"), pytest.param(DESKTOP, id="desktop")])
def viewport(request):
    return request.param


def new_page(browser, viewport):
    phone = viewport is PHONE
    context = browser.new_context(viewport=viewport, is_mobile=phone, has_touch=phone)
    page = context.new_page()
    page.set_default_timeout(15000)
    return context, page


def log_in(page, base: str, email: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(base + "/")


def no_sideways_scroll(page, viewport) -> None:
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= viewport["width"], f"{page.url} scrolls sideways: {width} px wide"


def box(page, test_id: str) -> dict:
    return page.get_by_test_id(test_id).bounding_box()


def inside_viewport(rect: dict, viewport) -> bool:
    return rect["x"] >= 0 and rect["y"] >= 0 and rect["x"] + rect["width"] <= viewport["width"] + 0.5 \
        and rect["y"] + rect["height"] <= viewport["height"] + 0.5


def test_trade_page_has_the_chart_on_top_and_up_down_in_reach(site, browser, viewport):
    server, _ = site
    context, page = new_page(browser, viewport)
    try:
        log_in(page, server.url, LONG_EMAIL)
        page.goto(server.url + "/trade/VOLATILITY_50")
        expect(page.get_by_test_id("live-price")).not_to_have_text("—", timeout=15000)
        assert page.evaluate("() => window.scrollY") == 0
        no_sideways_scroll(page, viewport)

        # A one-row header: brand, balance and (on a phone) the menu button on one line.
        header = page.locator("header.topbar").bounding_box()
        assert header["height"] < 64, f"the header is {header['height']} px tall"
        for part in (page.locator(".brand"), page.get_by_test_id("demo-balance")):
            part_box = part.bounding_box()
            assert header["y"] <= part_box["y"] and part_box["y"] + part_box["height"] <= header["y"] + header["height"]

        # The chart first, the whole of UP and DOWN on screen without scrolling.
        chart, up, down, stake = page.locator("#trade-chart").bounding_box(), box(page, "btn-up"), box(page, "btn-down"), box(page, "stake")
        assert inside_viewport(chart, viewport) and chart["height"] >= 180
        assert inside_viewport(up, viewport) and inside_viewport(down, viewport)
        assert inside_viewport(stake, viewport)
        if viewport is PHONE:
            assert chart["y"] + chart["height"] <= stake["y"], "the chart is not above the ticket"
            assert up["width"] >= 150 and up["height"] >= 44  # a thumb-sized target
        else:
            assert chart["x"] + chart["width"] <= stake["x"], "the ticket is not beside the chart"

        # Still in reach after scrolling to the open trades, on a phone (a bar fixed to the bottom).
        page.get_by_test_id("btn-up").click()
        expect(page.get_by_test_id("open-trade")).to_have_count(1)
        page.get_by_test_id("open-trades").scroll_into_view_if_needed()
        page.mouse.wheel(0, 600)
        page.wait_for_timeout(300)
        if viewport is PHONE:
            assert inside_viewport(box(page, "btn-down"), viewport)
        no_sideways_scroll(page, viewport)
    finally:
        context.close()


def test_history_is_stacked_cards_on_a_phone(site, browser, viewport):
    server, _ = site
    context, page = new_page(browser, viewport)
    try:
        log_in(page, server.url, LONG_EMAIL)
        page.goto(server.url + "/trade/VOLATILITY_50")
        expect(page.get_by_test_id("live-price")).not_to_have_text("—", timeout=15000)
        page.get_by_test_id("btn-down").click()
        expect(page.get_by_test_id("open-trade")).to_have_count(1)
        page.goto(server.url + "/history")
        row = page.get_by_test_id("history-row").first
        expect(row).to_be_visible()
        no_sideways_scroll(page, viewport)
        header_row = page.locator(".history-table thead")
        row_box = row.bounding_box()
        if viewport is PHONE:
            expect(header_row).to_be_hidden()
            assert inside_viewport({**row_box, "y": 0, "height": 0}, viewport)  # the card fits the width
            stake = row.locator("td[data-label=Stake]").bounding_box()
            market = row.locator("td[data-label=Market]").bounding_box()
            assert stake["y"] > market["y"], "the cells are not stacked"
        else:
            expect(header_row).to_be_visible()
            cells = row.locator("td")
            assert cells.nth(1).bounding_box()["y"] == cells.nth(3).bounding_box()["y"]  # one table row
    finally:
        context.close()


@pytest.mark.parametrize("who", ["trader", "admin"])
def test_a_long_email_never_scrolls_the_page_sideways(site, browser, viewport, who):
    server, trader_id = site
    context, page = new_page(browser, viewport)
    try:
        if who == "trader":
            log_in(page, server.url, LONG_EMAIL)
            page.goto(server.url + "/profile")
        else:
            log_in(page, server.url, "admin@example.com")
            page.goto(f"{server.url}/admin/users/{trader_id}")
        email = page.get_by_text(LONG_EMAIL, exact=True).first
        expect(email).to_be_visible()
        rect = email.bounding_box()
        assert rect["x"] + rect["width"] <= viewport["width"], "the email sticks out of the page"
        no_sideways_scroll(page, viewport)
    finally:
        context.close()
