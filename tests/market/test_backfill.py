"""Seed-time history: a day of simulated prices recorded through the tick store, so a new
install's charts are full, and the live feed carries on from the last recorded price."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from edutradex.extensions import db
from edutradex.market import backfill, candles
from edutradex.market.models import Candle, Market, Tick

from .conftest import T0, FeedHarness, tick_count

SIMULATED = ["OTC_EUR_USD", "OTC_GBP_USD", "OTC_GOLD", "OTC_USD_JPY",
             "VOLATILITY_10", "VOLATILITY_100", "VOLATILITY_25", "VOLATILITY_50"]


def test_tick_times_are_coarse_then_fine_and_end_now():
    times = backfill.tick_times(T0, 24, 10, 30, 500)
    assert times == sorted(set(times))
    assert times[-1] == T0
    assert times[0] >= T0 - 86_400_000 and times[0] - (T0 - 86_400_000) < 10_000
    gaps = {b - a for a, b in zip(times, times[1:], strict=False)}
    assert gaps == {10_000, 500}  # T0 sits on the 10 s grid
    fine = [t for t in times if t >= T0 - 30 * 60_000]
    assert len(fine) == 30 * 60 * 2 + 1
    assert len(times) == len(fine) + 24 * 360 - 180


def test_seed_backfills_a_day_of_candles_for_simulated_markets_only(seeded, runner):
    started = time.monotonic()
    result = runner.invoke(args=["seed"])
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert "History: 24 h of simulated prices for 8 market(s)" in result.output
    assert elapsed < 30, f"seeding took {elapsed:.1f} s"  # about 2 s alone on the 2-core machine
    with seeded.app_context():
        symbols = set(db.session.scalars(select(Tick.symbol).distinct()))
        assert symbols == set(SIMULATED)  # FOREX gets no invented prices
        for symbol in SIMULATED:
            first, last, count = db.session.execute(
                select(func.min(Tick.ts_ms), func.max(Tick.ts_ms), func.count(Tick.id)).where(Tick.symbol == symbol)).one()
            assert last - first > 86_000_000
            assert count > 8_000
            minutes = db.session.scalar(select(func.count(Candle.id)).where(
                Candle.symbol == symbol, Candle.resolution == candles.MINUTE))
            assert 1430 <= minutes <= 1441
            hours = candles.candles(symbol, 3600, last // 1000 - 86_400, last // 1000)
            assert len(hours) >= 24
            assert all(bar.low <= min(bar.open, bar.close) and bar.high >= max(bar.open, bar.close) for bar in hours)
            # minutes are real candles (several ticks), not flat dashes
            assert sum(1 for bar in hours if bar.high > bar.low) >= 20


def test_backfill_is_idempotent_and_keeps_existing_history(seeded):
    with seeded.app_context():
        first = backfill.backfill_history(hours=2, now_ms=T0, seed=1)
        assert "for 8 market(s)" in first
        ticks_before = tick_count(seeded)
        candles_before = db.session.scalar(select(func.count(Candle.id)))
        again = backfill.backfill_history(hours=2, now_ms=T0 + 600_000, seed=2)
        assert again == "History: every simulated market has history already."
        assert tick_count(seeded) == ticks_before
        assert db.session.scalar(select(func.count(Candle.id))) == candles_before
        ids = list(db.session.scalars(select(Tick.id)))
        assert len(ids) == len(set(ids))


def test_backfill_turned_off(seeded):
    seeded.config["SEED_BACKFILL_HOURS"] = 0
    with seeded.app_context():
        assert "not backfilled" in backfill.backfill_history()
    assert tick_count(seeded) == 0


def test_live_feed_carries_on_from_the_last_backfilled_price(seeded, clock):
    with seeded.app_context():
        backfill.backfill_history(hours=1, now_ms=clock.now_ms(), seed=3)
        last = {m.symbol: db.session.scalar(select(Tick).where(Tick.symbol == m.symbol)
                                            .order_by(Tick.ts_ms.desc()).limit(1))
                for m in db.session.scalars(select(Market).where(Market.market_type != "FOREX"))}
        last_id = max(t.id for t in last.values())
        # an hour of a walk has moved away from the start prices
        assert any(t.mid != m.initial_price for t, m in
                   ((last[m.symbol], m) for m in db.session.scalars(select(Market).where(Market.market_type != "FOREX"))))
    harness = FeedHarness(seeded, clock)
    with seeded.app_context():
        harness.feed.reload_markets()
    for symbol, tick in last.items():
        assert harness.feed.simulator.walks[symbol].price == pytest.approx(float(tick.mid), rel=1e-12), symbol
    harness.run(2, step_ms=500)
    harness.flush()
    with seeded.app_context():
        for symbol, tick in last.items():
            live = db.session.scalar(select(Tick).where(Tick.symbol == symbol, Tick.ts_ms > tick.ts_ms)
                                     .order_by(Tick.ts_ms).limit(1))
            assert live is not None and live.id > last_id
            assert abs(float(live.mid) - float(tick.mid)) / float(tick.mid) < 0.01, symbol
