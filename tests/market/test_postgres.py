"""The tick store, candles and the catalogue on a real PostgreSQL server."""

from __future__ import annotations

from decimal import Decimal

import pytest

from edutradex.extensions import db
from edutradex.market import candles, quotes, service, ticks

from .conftest import FakeClock, FeedHarness, check_tick_ids, tick_count

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_seeded(pg_app):
    with pg_app.app_context():
        service.seed_markets()
    return pg_app


def test_feed_ticks_candles_and_pruning_on_postgres(pg_seeded, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(quotes, "now_ms", clock.now_ms)
    pg_seeded.config["TICK_RETENTION_HOURS"] = 1 / 60
    harness = FeedHarness(pg_seeded, clock)
    harness.run(20 * 150, step_ms=50)  # 2.5 minutes
    harness.flush()
    with pg_seeded.app_context():
        now_s = clock.now_ms() // 1000
        live = candles.candles("OTC_GOLD", 60, now_s - 600, now_s)
        harness.feed.maintain(prune=True)
        assert candles.aggregated_until("OTC_GOLD") is not None
        again = candles.candles("OTC_GOLD", 60, now_s - 600, now_s)
        assert [(b.start_s, b.open, b.high, b.low, b.close) for b in again] == \
               [(b.start_s, b.open, b.high, b.low, b.close) for b in live]
        last = ticks.tick_at_or_before("OTC_GOLD", clock.now_ms())
        assert last.mid == quotes.latest_quote("OTC_GOLD").mid
        assert ticks.first_tick_after("OTC_GOLD", clock.now_ms()) is None
    assert 0 < tick_count(pg_seeded, "OTC_GOLD") < 300


def test_tick_ids_on_postgres(pg_seeded, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(quotes, "now_ms", clock.now_ms)
    check_tick_ids(pg_seeded, clock)


def test_update_market_on_postgres(pg_seeded):
    with pg_seeded.app_context():
        service.update_market("VOLATILITY_50", payout_percent="92.5", trend_bias="-1", spread="0.05")
        db.session.commit()
        market = service.get_market("VOLATILITY_50")
        assert (market.payout_percent, market.trend_bias) == (Decimal("92.50"), Decimal("-1.0000"))


def test_candles_api_on_postgres(pg_seeded):
    client = pg_seeded.test_client()
    assert client.get("/api/markets/OTC_GOLD/candles?resolution=1m&from=0&to=600").get_json() == []
    assert client.get("/api/markets/OTC_GOLD/candles?resolution=9m&from=0&to=600").status_code == 400
