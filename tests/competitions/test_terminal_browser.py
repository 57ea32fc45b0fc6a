"""The CFD terminal in a real browser (Debian chromium) against the app as a real process
with its own price feed: join a competition, trade when it goes LIVE (a buy with SL/TP,
the margin and the P&L at each level shown before sending), watch the position's live P&L
and its lines on the chart, close it, and read the fill's proof in History. Screenshots of
the terminal at desktop and phone widths go to test-artifacts/."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from edutradex.competitions import service
from edutradex.extensions import db
from edutradex.types import utcnow
from tests.conftest import ARTIFACTS, build_app
from tests.support.browser import sign_up
from tests.support.live import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]
START_IN_SECONDS = 10


@pytest.fixture
def live_server(tmp_path):
    server = LiveServer(tmp_path / "live", COMPETITIONS_OPEN="1").prepare().start()
    yield server
    server.stop()


def competition_starting_soon(live_server) -> tuple[int, str]:
    app = build_app(live_server.env["DATABASE_URL"])
    now = utcnow().replace(microsecond=0)
    start = now + timedelta(seconds=START_IN_SECONDS)
    with app.app_context():
        c = service.create_competition({
            "name": "Majors Sprint", "entry_fee": "0", "min_participants": 1, "max_participants": 20,
            "registration_opens_at": now - timedelta(hours=1), "registration_closes_at": start, "start_at": start,
            "end_at": now + timedelta(hours=2), "prize_table": ["100"], "allowed_markets": ["OTC_EUR_USD", "OTC_GOLD"],
        })
        service.publish_competition(c.id)
        found = (c.id, c.slug)
        db.session.remove()
        db.engine.dispose()
    return found


def test_join_buy_with_sl_tp_watch_pnl_close_and_read_the_proof(live_server, page, browser):
    base = live_server.url
    problems = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    sign_up(page, base, "Desk Trader", "desk@example.com")
    cid, slug = competition_starting_soon(live_server)  # joined within its registration window
    page.goto(f"{base}/competitions/{cid}")
    page.get_by_test_id("join").click()
    page.get_by_test_id("join-submit").click()
    page.get_by_test_id("my-entry").wait_for()

    # Before the start the terminal counts down; the live server's clock starts it.
    page.goto(f"{base}/competitions/{slug}/trade")
    assert page.get_by_test_id("terminal-closed").get_attribute("data-access") == "not_live_yet"
    for _ in range(40):
        page.goto(f"{base}/competitions/{cid}")
        if page.get_by_test_id("open-terminal").count():
            break
        page.wait_for_timeout(500)
    page.get_by_test_id("open-terminal").click()
    page.wait_for_url(f"{base}/competitions/{slug}/trade")
    assert page.get_by_test_id("trading-account").get_attribute("data-account") == "competition"

    page.wait_for_function("() => /\\d/.test(document.getElementById('live-ask').textContent)")
    ask = float(page.get_by_test_id("live-ask").inner_text())
    page.get_by_test_id("lots").fill("0.015")  # checked as typed, in the server's words
    assert page.get_by_test_id("lots-error").inner_text() == "Lots: in steps of 0.01 on EUR/USD OTC."
    page.get_by_test_id("lots").fill("0.10")
    assert page.get_by_test_id("lots-error").inner_text() == ""
    page.get_by_test_id("stop-loss").fill(f"{ask - 0.05:.5f}")
    page.get_by_test_id("take-profit").fill(f"{ask + 0.05:.5f}")
    # Before sending: the margin it needs and what it makes or loses at each level.
    page.get_by_test_id("pnl-at-sl").filter(has_text="USD at SL").wait_for()
    page.get_by_test_id("pnl-at-tp").filter(has_text="USD at TP").wait_for()
    assert page.get_by_test_id("pnl-at-sl").inner_text().startswith("−")
    assert page.get_by_test_id("pnl-at-tp").inner_text().startswith("+")
    assert re.fullmatch(r"\d{3}\.\d\d USD", page.get_by_test_id("margin-required").inner_text())  # ~362 at 30:1
    assert page.get_by_test_id("place-order").inner_text() == "Buy 0.10 lots at market"
    page.get_by_test_id("place-order").click()

    row = page.get_by_test_id("position-row")
    row.wait_for()
    assert "filled at" in page.get_by_test_id("toast").first.inner_text()
    # Live P&L: the row is revalued from the tick stream (at the bid, for a long).
    first = row.locator(".cfd-now").inner_text()
    page.wait_for_function("(t) => document.querySelector('.cfd-position .cfd-now').textContent !== t", arg=first)
    assert re.fullmatch(r"[+-]\d+\.\d\d", row.get_by_test_id("position-pnl").inner_text())
    # Entry, SL and TP on the chart.
    assert page.evaluate("EduTradeX.MarketChart.all[0]._priceLines.length") == 3
    assert page.get_by_test_id("margin-level").inner_text().endswith("%")
    page.get_by_test_id("trading-account").wait_for()

    ARTIFACTS.mkdir(exist_ok=True)
    for width, height in ((1440, 900), (390, 844)):
        context = browser.new_context(viewport={"width": width, "height": height}, is_mobile=width < 500,
                                      storage_state=page.context.storage_state())
        shot = context.new_page()
        try:
            shot.goto(f"{base}/competitions/{slug}/trade")
            shot.wait_for_function("() => /\\d/.test(document.querySelector('.cfd-position .cfd-now').textContent)")
            shot.screenshot(path=str(ARTIFACTS / f"terminal-{width}.png"), full_page=True)
            assert shot.evaluate("document.documentElement.scrollWidth") <= width, "the terminal scrolls sideways"
            button = shot.get_by_test_id("place-order").bounding_box()
            assert button["x"] >= 0 and button["x"] + button["width"] <= width
        finally:
            context.close()

    # A refresh of the book (as after the engine's news) keeps the tab the trader is on.
    page.get_by_test_id("tab-orders").click()
    with page.expect_response(lambda r: r.url.endswith("/trade/book")):
        page.evaluate("htmx.ajax('GET', document.getElementById('cfd-terminal').dataset.bookUrl, "
                      "{target: '#cfd-account', swap: 'none'})")
    page.wait_for_timeout(200)
    assert page.get_by_test_id("orders").is_visible() and not page.get_by_test_id("positions").is_visible()
    page.get_by_test_id("tab-positions").click()

    row.get_by_test_id("close-position").click()
    page.get_by_test_id("no-positions").wait_for()
    page.get_by_test_id("tab-history").click()
    fills = page.get_by_test_id("fill-row")
    assert fills.count() == 2
    proof = fills.first.get_by_test_id("fill-proof").inner_text()  # the close, newest first
    assert re.search(r"tick #\d+ · \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC", proof), proof
    assert re.search(r"bid \d\.\d{5} / ask \d\.\d{5}", proof) and "manual close of a long at the bid" in proof
    assert "market" in fills.nth(1).get_by_test_id("fill-proof").inner_text()
    assert page.get_by_test_id("used-margin").inner_text() == "0.00"

    # A placement answers with what it changed only: the first position fills the empty tab,
    # the next one comes as one row on top; counts, History, the account bar and the chart follow.
    page.get_by_test_id("tab-positions").click()
    page.get_by_test_id("stop-loss").fill("")
    page.get_by_test_id("take-profit").fill("")
    for placed in (1, 2):
        with page.expect_response(lambda r: r.url.endswith("/trade/orders")) as answer:
            page.get_by_test_id("place-order").click()
        assert answer.value.status == 200
        page.wait_for_function("(n) => document.querySelectorAll('#cfd-positions .cfd-position').length === n",
                               arg=placed)
        assert page.locator("#count-positions").inner_text() == str(placed)
        # an entry line each, drawn once the swap has settled
        page.wait_for_function("(n) => EduTradeX.MarketChart.all[0]._priceLines.length === n", arg=placed)
    assert 'id="cfd-positions"' not in answer.value.text()  # the second answer: one row, not the tab
    ids = page.get_by_test_id("position-row").evaluate_all("rows => rows.map(r => +r.dataset.id)")
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 2  # newest first, as the book renders them
    assert page.get_by_test_id("positions").is_visible() and not page.get_by_test_id("history").is_visible()
    assert page.get_by_test_id("used-margin").inner_text() != "0.00"
    page.get_by_test_id("tab-history").click()
    assert page.get_by_test_id("fill-row").count() == 4
    assert "market" in page.get_by_test_id("fill-row").first.get_by_test_id("fill-proof").inner_text()
    page.reload()  # the page drawn whole agrees with what the answers built
    assert page.get_by_test_id("position-row").evaluate_all("rows => rows.map(r => +r.dataset.id)") == ids
    assert page.locator("#count-positions").inner_text() == "2"
    assert problems == []
