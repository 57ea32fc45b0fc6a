"""A new trader in a real browser (Debian's chromium through Playwright) against the app
running as a real process under eventlet."""

import pytest

from tests.support.browser import sign_up

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_register_see_balance_logout_login(live_server, page):
    page.goto(live_server.url + "/")
    page.get_by_role("link", name="Start with a free demo account").click()
    sign_up(page, live_server.url, "Browser Trader", "browser@example.com", open_form=False)
    assert page.get_by_test_id("demo-balance").inner_text() == "10,000.00"
    assert page.get_by_test_id("dashboard-balance").inner_text() == "10,000.00"

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/login")
    page.get_by_label("Email").fill("browser@example.com")
    page.get_by_label("Password").fill("wrong-password-1")
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_role("alert").inner_text() == "Invalid email or password."

    page.get_by_label("Password").fill("correct-horse-1")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(live_server.url + "/")
    assert "Welcome back, Browser Trader" in page.content()
    assert page.get_by_test_id("demo-balance").inner_text() == "10,000.00"


def test_the_page_has_no_console_errors_and_a_live_socket(live_server, page):
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(live_server.url + "/login")
    # a function, not a bare expression: Playwright polls a bare expression with eval, which
    # the CSP (no unsafe-eval) refuses whenever the first check is not already true
    page.wait_for_function("() => window.EduTradeX && window.EduTradeX.socket && window.EduTradeX.socket.connected")
    assert errors == []


def test_phone_layout_has_a_menu(live_server, browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    try:
        sign_up(page, live_server.url, "Phone Trader", "phone@example.com")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, "the page scrolls sideways on a phone"
        assert page.get_by_test_id("demo-balance").is_visible()
    finally:
        context.close()
