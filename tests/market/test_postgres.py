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


def test_the_feed_writes_its_ticks_while_requests_hold_every_connection_of_the_web_pool(postgres_url, tmp_path):
    """Embedded, the feed runs beside the requests. Here the requests hold every connection
    of the web pool for the feed's whole run (a placement burst at its worst): the feed
    still takes the authority, writes every tick it makes and moves the watermark, because
    it has a pool of its own. On the shared pool it could not write a single tick, its
    quotes went stale and placements were refused."""
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    from edutradex.market import ticks
    from edutradex.market.feed import PriceFeed
    from tests.conftest import build_app

    app = build_app(postgres_url, MAIL_OUTBOX_DIR=str(tmp_path / "outbox"), FEED_TICK_INTERVAL_MS=20,
                    TICK_FLUSH_INTERVAL_MS=100,
                    SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 2, "max_overflow": 0, "pool_timeout": 0.5})
    with app.app_context():
        service.seed_markets()
        db.session.remove()
    try:
        with app.app_context():
            held = [db.engine.connect() for _ in range(2)]
            try:
                with pytest.raises(PoolTimeout):
                    db.engine.connect()  # the web pool is exhausted
                feed = PriceFeed(app, seed=3, emit=lambda symbol, frame: None, emit_board=None, adapters=False)
                feed.run(seconds=1.5)
                ended_ms = quotes.now_ms()
            finally:
                for conn in held:
                    conn.close()
        assert feed.ticks_produced > 0
        assert feed.writer.written == tick_count(app) == feed.ticks_produced
        with app.app_context():
            assert ended_ms - ticks.flushed_watermark() < 500  # the last batch too
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
