"""One clock: each web process measures its offset from the feed's clock (carried by the
heartbeat), reports it in /healthz and refuses placements while it is too large. The skew
is injected through the feed's clock seam, never by changing the system clock."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from edutradex.auth.models import User
from edutradex.binary.models import Trade
from edutradex.binary.service import place_trade
from edutradex.extensions import db
from edutradex.market import quotes
from edutradex.market.clock import ClockSkew, feed_clock_offset_ms
from edutradex.market.feed import PriceFeed
from tests.binary.conftest import make_market, tick_and_quote
from tests.binary.test_views import form
from tests.conftest import build_app
from tests.factories import make_user

SYMBOL = "OTC_EUR_USD"


def beat_with_skew(app, skew_ms: int) -> None:
    """A heartbeat from a feed whose clock runs `skew_ms` ahead of this process's."""
    feed = PriceFeed(app, seed=1, emit=lambda *a: None, emit_board=None, adapters=False,
                     clock_ms=lambda: quotes.now_ms() + skew_ms)
    with app.app_context():
        feed.beat()


@pytest.fixture
def trader(app, auth):
    with app.app_context():
        make_market(SYMBOL)
        tick_and_quote(SYMBOL, "1.10000")
        user_id = make_user("joe@example.com").id
    auth.login()
    return user_id


def test_a_2s_skew_is_reported_and_refuses_placements_with_a_clear_message(app, client, auth, trader):
    beat_with_skew(app, 2000)
    with app.app_context():
        assert abs(feed_clock_offset_ms() - 2000) < 100
        with pytest.raises(ClockSkew, match=r"clock and the price feed's differ by 2\.0 s"):
            place_trade(trader, SYMBOL, "UP", "10.00", 60, "clock-skew-00000001")
    app.config["HEALTHZ_TOKEN"] = "monitor-token"  # the details are for monitors and admins
    health = client.get("/healthz", headers={"X-Healthz-Token": "monitor-token"}).get_json()
    assert health["checks"]["clock"]["ok"] is False
    assert abs(health["checks"]["clock"]["feed_offset_ms"] - 2000) < 100
    response = client.post("/trade/place", data=form(client), headers=auth.htmx_headers(f"/trade/{SYMBOL}"))
    assert response.status_code == 503
    assert "Trading is paused" in response.get_data(as_text=True).replace("&#39;", "'")
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Trade)) == 0
        assert db.session.get(User, trader).demo_balance == Decimal("10000.00")

    beat_with_skew(app, -2000)  # behind is as bad as ahead
    with app.app_context(), pytest.raises(ClockSkew):
        place_trade(trader, SYMBOL, "UP", "10.00", 60, "clock-skew-00000002")

    beat_with_skew(app, 100)  # within MAX_CLOCK_SKEW_MS (250)
    assert client.get("/healthz", headers={"X-Healthz-Token": "monitor-token"}).get_json()["checks"]["clock"]["ok"] is True
    with app.app_context():
        assert place_trade(trader, SYMBOL, "UP", "10.00", 60, "clock-skew-00000003").status == "OPEN"


@pytest.mark.redis
def test_the_offset_is_measured_across_processes_through_redis(tmp_path, redis_url):
    """Production: the feed's heartbeat in Redis. The heartbeat's age comes from its TTL in
    Redis, so an old heartbeat still gives the right offset."""
    feed_app = build_app(f"sqlite:///{tmp_path / 'clock.db'}", REDIS_URL=redis_url)
    web_app = build_app(f"sqlite:///{tmp_path / 'clock.db'}", REDIS_URL=redis_url)
    try:
        beat_with_skew(feed_app, 2000)
        time.sleep(1.0)
        with web_app.app_context():
            assert abs(feed_clock_offset_ms() - 2000) < 100
        beat_with_skew(feed_app, -1500)
        with web_app.app_context():
            assert abs(feed_clock_offset_ms() + 1500) < 100
        beat_with_skew(feed_app, 0)
        time.sleep(0.5)
        with web_app.app_context():
            assert abs(feed_clock_offset_ms()) < 100
    finally:
        for app in (feed_app, web_app):
            with app.app_context():
                db.engine.dispose()
