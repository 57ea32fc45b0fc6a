"""An admin runs the platform from a real browser against the app as a real process:
finds a user, deactivates them (their open page is signed out at once), tunes a market,
and reads both actions in the audit log."""

import subprocess
import sys

import pytest

from tests.support.live import ROOT, LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "correct-horse-1"
SETUP = f"""
from edutradex import create_app
from edutradex.auth import service
app = create_app()
with app.app_context():
    service.create_admin("boss@example.com", "The Boss", "{PASSWORD}")
    service.register_user("Tara Target", "target@example.com", "{PASSWORD}")
"""


@pytest.fixture
def server(tmp_path):
    live = LiveServer(tmp_path / "live").prepare()
    subprocess.run([sys.executable, "-c", SETUP], cwd=ROOT, env=live.env, check=True, capture_output=True)
    live.start()
    yield live
    live.stop()


def log_in(page, url, email):
    page.goto(url + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(url + "/")


def test_admin_deactivates_a_user_tunes_a_market_and_reads_the_audit_log(server, browser, page):
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    # The user to deactivate has a page open, with its live socket.
    target_context = browser.new_context()
    target = target_context.new_page()
    try:
        log_in(target, server.url, "target@example.com")
        target.wait_for_function("() => window.EduTradeX && EduTradeX.socket && EduTradeX.socket.connected")

        log_in(page, server.url, "boss@example.com")
        page.get_by_role("link", name="Admin", exact=True).click()
        page.wait_for_url("**/admin/")
        page.locator(".admin-subnav").get_by_role("link", name="Users").click()
        page.get_by_label("Search by email, name or id").fill("target")
        page.get_by_role("button", name="Search").click()
        page.get_by_role("link", name="target@example.com").click()

        page.get_by_text("Deactivate", exact=True).click()  # opens the confirmation
        page.get_by_role("button", name="Yes, deactivate").click()
        page.wait_for_selector(".toast-success")
        assert "is deactivated" in page.locator(".toast-success").inner_text()
        assert page.get_by_test_id("user-status").inner_text() == "deactivated"

        # Their open page is told and sent to the login page; their session is gone.
        target.wait_for_url("**/login", timeout=10000)
        target.goto(server.url + "/profile")
        assert "/login" in target.url

        page.locator(".admin-subnav").get_by_role("link", name="Markets").click()
        page.locator("tr[data-symbol=VOLATILITY_50]").get_by_role("link", name="Edit").click()
        page.wait_for_url("**/admin/markets/VOLATILITY_50")
        page.get_by_label("Payout %").fill("87.50")
        page.get_by_label("Volatility mode").select_option("SPIKE")
        page.get_by_role("button", name="Save changes").click()
        page.wait_for_selector(".toast-success")
        toast = page.locator(".toast-success").inner_text()
        assert "Payout %, Volatility mode updated" in toast and "payout_percent" not in toast  # labels, not names
        assert page.get_by_label("Payout %").input_value() == "87.50"
        # The live price keeps moving on the admin page.
        price = page.locator("[data-live-price]")
        first = price.inner_text()
        page.wait_for_function("(before) => document.querySelector('[data-live-price]').textContent !== before",
                               arg=first, timeout=10000)

        page.locator(".admin-subnav").get_by_role("link", name="Audit log").click()
        rows = page.locator(".audit-table > tbody > tr")
        assert rows.count() == 2
        assert "market.update" in rows.nth(0).inner_text() and "VOLATILITY_50" in rows.nth(0).inner_text()
        assert "Payout %" in rows.nth(0).inner_text() and "87.50" in rows.nth(0).inner_text()
        assert "user.deactivate" in rows.nth(1).inner_text()
        page.get_by_label("Action").select_option("user.deactivate")
        page.get_by_role("button", name="Filter").click()
        assert page.locator(".audit-table > tbody > tr").count() == 1
        assert errors == []
    finally:
        target_context.close()
