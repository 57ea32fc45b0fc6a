"""A trader in a real browser (Debian chromium) against the app as a real process: funds
the wallet with the demo provider, finds a competition in the lobby, joins it through the
confirmation (which shows the balance after), and sees the pool and the countdown tick.
Screenshots of the lobby and the competition page at desktop and phone widths go to
test-artifacts/."""

from __future__ import annotations

from datetime import timedelta

import pytest

from edutradex.competitions import service
from edutradex.extensions import db
from edutradex.types import utcnow
from tests.conftest import ARTIFACTS, build_app
from tests.support.browser import sign_up
from tests.support.live import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def live_server(tmp_path):
    """The app as a process, with the competition pages open to traders."""
    server = LiveServer(tmp_path / "live", COMPETITIONS_OPEN="1").prepare().start()
    yield server
    server.stop()


def publish_in(live_server, **overrides) -> int:
    """A competition written into the live server's database through the service."""
    app = build_app(live_server.env["DATABASE_URL"])
    now = utcnow().replace(microsecond=0)
    with app.app_context():
        c = service.create_competition({
            "name": "Friday FX Sprint", "entry_fee": "10.00", "min_participants": 1, "max_participants": 20,
            "registration_opens_at": now - timedelta(hours=1), "registration_closes_at": now + timedelta(hours=3),
            "start_at": now + timedelta(hours=3), "end_at": now + timedelta(hours=5), "platform_fee_percent": "10",
            "prize_table": ["50", "30", "20"], "guaranteed_pool": "25.00",
            "description": "Trade the majors for two hours. Best equity wins.", **overrides,
        })
        service.publish_competition(c.id)
        cid = c.id
        db.session.remove()
        db.engine.dispose()
    return cid


def test_fund_join_see_pool_and_countdown(live_server, page, browser):
    base = live_server.url
    problems = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    cid = publish_in(live_server)
    sign_up(page, base, "Sprint Trader", "sprint@example.com")

    page.goto(base + "/wallet")
    page.get_by_test_id("deposit-amount").fill("50")
    page.get_by_test_id("deposit-submit").click()
    page.get_by_test_id("wallet-balance").filter(has_text="50.00").wait_for()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Competitions").click()
    card = page.get_by_test_id("competition-card").filter(has_text="Friday FX Sprint")
    assert card.get_by_test_id("pool").inner_text() == "0.00"
    assert card.get_by_test_id("seats").inner_text() == "0 / 20"
    card.get_by_role("link", name="Friday FX Sprint").click()
    page.wait_for_url(f"{base}/competitions/{cid}")

    countdown = page.get_by_test_id("countdown").locator(".countdown-value")
    first = countdown.inner_text()
    assert first.startswith("02:5"), first  # about three hours, by the server's clock
    page.wait_for_function("(t) => document.querySelector('.countdown-value').textContent !== t", arg=first)

    page.get_by_test_id("join").click()
    assert page.get_by_test_id("balance-after").inner_text() == "40.00"
    page.get_by_test_id("join-submit").click()
    page.get_by_test_id("my-entry").wait_for()
    assert page.get_by_test_id("pool").inner_text() == "10.00"
    assert page.get_by_test_id("seats").inner_text() == "1 / 20"
    assert "You joined Friday FX Sprint" in page.content()
    # The header shows the account this page trades with: the competition account.
    account = page.get_by_test_id("trading-account")
    assert account.get_attribute("data-account") == "competition"
    assert account.locator(".balance-label").inner_text().upper() == "FRIDAY FX SPR…"
    assert account.get_by_test_id("account-balance").inner_text() == "10,000.00 USD"

    ARTIFACTS.mkdir(exist_ok=True)
    for width, height in ((1440, 900), (390, 844)):
        context = browser.new_context(viewport={"width": width, "height": height}, is_mobile=width < 500,
                                      storage_state=page.context.storage_state())
        shot = context.new_page()
        try:
            for name, path in (("lobby", "/competitions"), ("competition", f"/competitions/{cid}")):
                shot.goto(base + path)
                shot.screenshot(path=str(ARTIFACTS / f"competitions-{name}-{width}.png"), full_page=True)
                assert shot.evaluate("document.documentElement.scrollWidth") <= width, f"{name} scrolls sideways"
                # A one-row header, whichever account the badge shows.
                header = shot.locator("header.topbar").bounding_box()
                assert header["height"] < 64, f"{name}: the header is {header['height']} px tall at {width} px"
                for part in (shot.locator(".brand"), shot.get_by_test_id("trading-account")):
                    part_box = part.bounding_box()
                    assert header["y"] <= part_box["y"] <= part_box["y"] + part_box["height"] <= header["y"] + header["height"]
                    assert part_box["x"] + part_box["width"] <= width
        finally:
            context.close()
    assert problems == []


def test_after_the_end_the_trader_sees_the_result_and_the_prize_in_the_wallet(live_server, page):
    """The live server's own competition clock starts, ends and settles it."""
    base = live_server.url
    sign_up(page, base, "Quick Trader", "quick@example.com")
    page.goto(base + "/wallet")
    page.get_by_test_id("deposit-amount").fill("20")
    page.get_by_test_id("deposit-submit").click()
    page.get_by_test_id("wallet-balance").filter(has_text="20.00").wait_for()
    now = utcnow().replace(microsecond=0)
    cid = publish_in(live_server, name="Blitz", registration_closes_at=now + timedelta(seconds=8),
                     start_at=now + timedelta(seconds=8), end_at=now + timedelta(seconds=11),
                     prize_requires_trade=False, guaranteed_pool="0")
    page.goto(f"{base}/competitions/{cid}")
    page.get_by_test_id("join").click()
    page.get_by_test_id("join-submit").click()
    page.get_by_test_id("my-entry").wait_for()

    for _ in range(60):  # the clock runs every second; settled a moment after the end
        page.wait_for_timeout(500)
        page.goto(f"{base}/competitions/{cid}")
        if page.get_by_test_id("my-result").count():
            break
    # Pool 10.00 - 10 % fee = 9.00; rank 1 takes 50 % = 4.50.
    assert "rank 1" in page.get_by_test_id("my-result").inner_text()
    assert "4.50" in page.get_by_test_id("my-result").inner_text()
    page.goto(base + "/wallet")
    assert page.get_by_test_id("wallet-balance").inner_text() == "14.50"  # 20 - 10 + 4.50
