"""The journal's equity curve and the live watchlist in a real browser, against the app as
a real process (the feed runs inside it, the embedded default)."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from config import TestingConfig
from edutradex import create_app
from edutradex.auth.models import User
from edutradex.extensions import db
from tests.journal.conftest import settled_trade
from tests.support.browser import sign_up

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_journal_chart_renders_and_a_watched_market_shows_a_live_price(live_server, browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    page.set_default_timeout(15000)
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        sign_up(page, live_server.url, "Journal Trader", "journal@example.com")
        page.goto(live_server.url + "/journal")
        assert page.get_by_test_id("journal-empty").is_visible()

        app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=live_server.env["DATABASE_URL"])
        with app.app_context():
            user_id = db.session.scalar(select(User.id).where(User.email == "journal@example.com"))
            start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
            for n, (symbol, pnl) in enumerate((("VOLATILITY_10", "8.00"), ("OTC_GOLD", "-10.00"),
                                               ("VOLATILITY_10", "8.00"))):
                settled_trade(user_id, symbol, pnl, start + timedelta(minutes=10 * n))
            db.engine.dispose()

        page.goto(live_server.url + "/journal")
        page.wait_for_selector("#journal-chart[data-ready='1'] canvas")
        assert page.get_by_test_id("j-trades").inner_text() == "3"
        assert page.get_by_test_id("j-win-rate").inner_text() == "66.67%"
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, "the journal scrolls sideways on a phone"

        page.goto(live_server.url + "/")
        page.get_by_test_id("watchlist-empty").wait_for()
        page.get_by_test_id("watch-symbol").select_option("VOLATILITY_10")
        page.get_by_test_id("watch-add").click()
        row = page.locator(".watchlist-row[data-symbol='VOLATILITY_10']")
        row.wait_for()
        # a frame of the list's room reached the row (data-live is set by the socket handler only)
        page.wait_for_selector(".watchlist-row[data-symbol='VOLATILITY_10'][data-live='1']")
        bid = row.get_by_test_id("watch-bid").inner_text()
        assert bid.replace(".", "", 1).isdigit(), bid
        page.wait_for_function(
            "(first) => document.querySelector(\".watchlist-row[data-symbol='VOLATILITY_10'] [data-role=bid]\").textContent !== first",
            arg=bid)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, "the dashboard scrolls sideways on a phone"
        assert errors == []
    finally:
        context.close()
