"""The rule set's distance to breach on the CFD terminal, in a real browser against the app
as a real process with its own price feed: the account bar shows the daily-loss floor and
the distance to it, revalued on every tick with the equity."""

from __future__ import annotations

import re

import pytest

from tests.competitions.test_terminal_browser import competition_starting_soon, live_server  # noqa: F401 - fixture
from tests.support.browser import sign_up

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_distance_to_the_daily_loss_floor_moves_with_the_equity(live_server, page):  # noqa: F811
    from edutradex.competitions.models import Competition
    from edutradex.extensions import db
    from tests.conftest import build_app

    base = live_server.url
    problems = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    sign_up(page, base, "Rule Trader", "rules@example.com")
    cid, slug = competition_starting_soon(live_server)
    app = build_app(live_server.env["DATABASE_URL"])
    with app.app_context():  # a term set before anyone joined (5 % of 10,000: floor 9,500.00)
        db.session.get(Competition, cid).max_daily_loss_percent = 5
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    page.goto(f"{base}/competitions/{cid}")
    assert "Max daily loss" in page.get_by_test_id("rule-set").inner_text()
    page.get_by_test_id("join").click()
    page.get_by_test_id("join-submit").click()
    page.get_by_test_id("my-entry").wait_for()
    for _ in range(40):
        page.goto(f"{base}/competitions/{cid}")
        if page.get_by_test_id("open-terminal").count():
            break
        page.wait_for_timeout(500)
    page.goto(f"{base}/competitions/{slug}/trade")
    assert page.get_by_test_id("rule-distance").locator(".stat-label").text_content() == "Daily loss floor"
    assert page.locator("#cfd-rule-distance").text_content() == "9,500.00 · 500.00 away"
    page.wait_for_function("() => /\\d/.test(document.getElementById('live-ask').textContent)")
    page.get_by_test_id("lots").fill("1")
    page.get_by_test_id("place-order").click()
    page.get_by_test_id("position-row").wait_for()
    first = page.locator("#cfd-rule-distance").inner_text()
    page.wait_for_function("(t) => document.getElementById('cfd-rule-distance').textContent !== t", arg=first)
    equity, distance = page.evaluate("[document.getElementById('cfd-equity').textContent, "
                                     "document.getElementById('cfd-rule-distance').textContent]")
    match = re.fullmatch(r"9,500\.00 · (-?[\d,]+\.\d\d) away", distance)
    assert match, distance
    as_number = lambda text: float(text.replace(",", "").replace("−", "-"))  # noqa: E731
    assert abs(as_number(equity) - 9500 - as_number(match.group(1))) < 0.011
    assert problems == []
