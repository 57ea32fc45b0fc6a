"""The feed loop, driven pass by pass with a fake clock."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import event, select

from edutradex.extensions import db
from edutradex.market import candles, quotes, service, store, ticks
from edutradex.market.feed import PriceFeed, TickCoalescer, feed_health
from edutradex.market.models import Candle, Tick, TickGap

from .conftest import FakeClock, FeedHarness, check_tick_ids, tick_count

SIMULATED = {"OTC_EUR_USD", "OTC_GBP_USD", "OTC_USD_JPY", "OTC_GOLD",
             "VOLATILITY_10", "VOLATILITY_25", "VOLATILITY_50", "VOLATILITY_100"}


def test_every_simulated_market_ticks_at_the_configured_interval(harness, seeded):
    harness.run(40)  # 2 s at 50 ms a pass; ticks every 500 ms
    harness.flush()
    with seeded.app_context():
        for symbol in SIMULATED:
            assert 4 <= tick_count(seeded, symbol) <= 5
            quote = quotes.fresh_quote(symbol)
            assert quote.source == "SIM" and quote.bid <= quote.mid <= quote.ask
            last = ticks.tick_at_or_before(symbol, harness.clock.now_ms())
            assert (last.mid, last.ts_ms) == (quote.mid, quote.ts_ms)


def test_forex_is_never_simulated_and_shows_unavailable(harness, seeded):
    harness.run(40)
    harness.flush()
    with seeded.app_context():
        for symbol in ("EUR_USD", "GBP_USD", "USD_JPY", "AUD_USD", "USD_CHF"):
            assert tick_count(seeded, symbol) == 0
            assert quotes.latest_quote(symbol) is None
            with pytest.raises(quotes.MarketUnavailable, match="no live price"):
                quotes.fresh_quote(symbol, "EUR/USD")
            view = service.market_view(service.get_market(symbol))
            assert view.status == "unavailable" and "need a market-data provider" in view.message


def test_ticks_are_written_in_batches_with_one_insert(harness, seeded):
    statements = []
    with seeded.app_context():
        engine = db.engine

    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO TICKS"):
            statements.append(executemany)

    event.listen(engine, "before_cursor_execute", count)
    try:
        harness.run(20, step_ms=50)  # 1 s: flushes every 250 ms
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert tick_count(seeded) == 8 * 2
    assert 1 <= len(statements) <= 5  # one INSERT per flush, not one per tick
    assert all(statements)  # each an executemany


def test_every_quote_names_its_tick_and_no_tick_id_is_handed_out_twice(seeded, clock):
    check_tick_ids(seeded, clock)


def test_writer_keeps_ticks_when_the_database_fails_and_retries(seeded, monkeypatch):
    writer = store.TickWriter(flush_interval=0)
    row = store.TickRow(1, "OTC_GOLD", 1, Decimal("1"), Decimal("1"), Decimal("1"), "SIM")
    writer.add(row)
    with seeded.app_context():
        original = db.engine.begin
        monkeypatch.setattr(type(db.engine), "begin", lambda self: (_ for _ in ()).throw(RuntimeError("locked")))
        assert writer.flush() == 0 and writer.buffer == [row]
        monkeypatch.setattr(type(db.engine), "begin", lambda self: original())
        assert writer.flush() == 1 and writer.buffer == []


def test_frames_are_coalesced_to_one_per_symbol_per_interval():
    emitted = []
    clock = FakeClock()
    coalescer = TickCoalescer(lambda symbol, frame: emitted.append(frame), interval=0.1, clock=clock.monotonic)

    def tick(symbol, mid, ts):
        coalescer.add(quotes.Quote(symbol, Decimal(mid), Decimal(mid), Decimal(mid), None, ts, "SIM"), 1)

    tick("X", "1.0", 999)
    assert coalescer.due() and coalescer.flush() == 1  # the first tick goes out at once
    clock.advance(20)
    for i, mid in enumerate(["1.1", "1.3", "0.9", "1.2"]):
        tick("X", mid, 1000 + i)
        tick("Y", "5", 1000 + i)
    assert coalescer.flush() == 1  # Y at once; X waits for its interval
    assert not coalescer.due()
    clock.advance(80)
    assert coalescer.due() and coalescer.flush() == 1
    frame = emitted[-1]
    assert (frame["symbol"], frame["mid"], frame["high"], frame["low"], frame["ts_ms"]) == ("X", 1.2, 1.3, 0.9, 1003)
    assert [f["symbol"] for f in emitted] == ["X", "Y", "X"]
    assert coalescer.flush() == 0


def test_a_frame_sent_late_does_not_hold_back_every_later_tick():
    """Ticks on a 100 ms grid; one flush runs 30 ms late (a busy process). The lag must wear
    off, not carry over to every later frame, and frames must stay >= 90 ms apart."""
    sent = []
    clock = FakeClock()
    coalescer = TickCoalescer(lambda symbol, frame: sent.append((clock.ms, frame["ts_ms"])), interval=0.1,
                              clock=clock.monotonic)
    start = clock.ms
    for k in range(12):
        grid = start + 100 * k
        clock.ms = grid
        coalescer.add(quotes.Quote("X", Decimal(1), Decimal(1), Decimal(1), None, grid, "SIM"), 1)
        if k == 2:
            clock.advance(30)  # this pass is late
        while not coalescer.due():  # the loop sleeps until ready_at()
            clock.ms = max(clock.ms + 1, round(coalescer.ready_at() * 1000))
        coalescer.flush()
    lags = [at - ts for at, ts in sent]
    assert lags[:2] == [0, 0] and lags[2] == 30
    assert lags[3:6] == [20, 10, 0]  # 10 ms of lag made up per frame
    assert set(lags[6:]) == {0}
    assert all(b[0] - a[0] >= 90 for a, b in zip(sent, sent[1:], strict=False))


def test_the_loop_sleeps_until_the_next_tick_or_held_frame_is_due(seeded, clock):
    harness = FeedHarness(seeded, clock)
    feed = harness.feed
    harness.run(1)
    assert feed.next_step  # every simulated market has its next tick booked
    due_in = (min(feed.next_step.values()) - clock.now_ms()) / 1000
    assert 0 < due_in and feed.seconds_to_next_event(60) == pytest.approx(due_in, abs=1e-6)
    assert feed.seconds_to_next_event(0.01) == 0.01  # never longer than the pass limit
    feed.coalescer.add(quotes.Quote("HELD", Decimal(1), Decimal(1), Decimal(1), None, clock.now_ms(), "SIM"), 1)
    feed.coalescer.slot["HELD"] = clock.monotonic() + 0.004
    assert feed.seconds_to_next_event(60) == pytest.approx(0.004 - 0.0005, abs=1e-6)


def test_a_fast_feed_emits_at_most_one_frame_per_symbol_per_100ms(seeded, clock, monkeypatch):
    seeded.config["FEED_TICK_INTERVAL_MS"] = 20
    harness = FeedHarness(seeded, clock)
    harness.run(100, step_ms=20)  # 2 s, 100 ticks per symbol
    per_symbol = [f for s, f in harness.frames if s == "VOLATILITY_100"]
    assert 18 <= len(per_symbol) <= 21
    times = [f["ts_ms"] for f in per_symbol]
    assert all(b - a >= 100 for a, b in zip(times, times[1:], strict=False))


def test_admin_changes_apply_on_the_next_tick(harness, seeded):
    harness.run(12)
    with seeded.app_context():
        service.update_market("VOLATILITY_10", volatility_mode="SPIKE", trend_bias="0.5", spread="1.5", precision=1)
        service.update_market("OTC_GOLD", active=False)
        db.session.commit()
    harness.frames.clear()
    harness.run(12)  # the next ticks, well before the periodic reload is due
    walk = harness.feed.simulator.walks["VOLATILITY_10"]
    assert (walk.config.volatility_mode, walk.config.trend_bias) == ("SPIKE", 0.5)
    frame = [f for s, f in harness.frames if s == "VOLATILITY_10"][0]
    assert frame["precision"] == 1
    assert Decimal(str(frame["ask"])) - Decimal(str(frame["bid"])) >= Decimal("1.5")
    assert not [f for s, f in harness.frames if s == "OTC_GOLD"]
    assert "OTC_GOLD" not in harness.feed.simulator.walks


def test_periodic_reload_picks_up_changes_made_elsewhere(harness, seeded):
    harness.run(2)
    with seeded.app_context():
        db.session.execute(db.update(service.Market).where(service.Market.symbol == "OTC_GOLD").values(active=False))
        db.session.commit()  # not through update_market: no announcement
    harness.run(30)  # > FEED_CONFIG_RELOAD_SECONDS
    assert "OTC_GOLD" not in harness.feed.simulator.walks


def test_a_restarted_feed_continues_from_the_last_recorded_price(seeded, clock):
    first = FeedHarness(seeded, clock, seed=1)
    first.run(40)
    first.flush()
    with seeded.app_context():
        last = ticks.tick_at_or_before("OTC_GOLD", clock.now_ms()).mid
    second = FeedHarness(seeded, clock, seed=2)
    with seeded.app_context():
        second.feed.reload_markets()
    assert second.feed.simulator.walks["OTC_GOLD"].price == pytest.approx(float(last))


def test_stale_prices_refuse_trading(harness, seeded):
    harness.run(4)
    with seeded.app_context():
        quotes.fresh_quote("OTC_EUR_USD")
        harness.clock.advance(int(seeded.config["FEED_STALE_AFTER_SECONDS"] * 1000) + 1)
        with pytest.raises(quotes.MarketUnavailable, match="stale"):
            quotes.fresh_quote("OTC_EUR_USD", "EUR/USD OTC")
        assert service.market_view(service.get_market("OTC_EUR_USD")).status == "stale"


def test_candles_are_aggregated_and_old_ticks_pruned(seeded, clock):
    seeded.config["TICK_RETENTION_HOURS"] = 1 / 60  # one minute
    harness = FeedHarness(seeded, clock)
    harness.run(20 * 60 * 3, step_ms=50)  # three minutes
    harness.flush()
    with seeded.app_context():
        live = candles.candles("OTC_EUR_USD", 60, clock.now_ms() // 1000 - 600, clock.now_ms() // 1000)
        before = tick_count(seeded, "OTC_EUR_USD")
        harness.feed.maintain(prune=True)
        stored = db.session.scalars(select(Candle).where(Candle.symbol == "OTC_EUR_USD", Candle.resolution == 60)
                                    .order_by(Candle.start_s)).all()
        assert len(stored) >= 2
        after = tick_count(seeded, "OTC_EUR_USD")
        assert 0 < after < before
        oldest = db.session.scalar(select(db.func.min(Tick.ts_ms)).where(Tick.symbol == "OTC_EUR_USD"))
        assert oldest >= min(clock.now_ms() - 60_000, candles.aggregated_until("OTC_EUR_USD") * 1000)
        # the same candles whether built from ticks before pruning or from the store after
        again = candles.candles("OTC_EUR_USD", 60, clock.now_ms() // 1000 - 600, clock.now_ms() // 1000)
        assert [(b.start_s, b.open, b.high, b.low, b.close) for b in again] == \
               [(b.start_s, b.open, b.high, b.low, b.close) for b in live]


def test_health_reports_the_age_of_the_last_tick(seeded, clock):
    seeded.config["EMBEDDED_SERVICES"] = True
    harness = FeedHarness(seeded, clock)
    with seeded.app_context():
        ok, detail = feed_health()
        assert not ok and detail["running"] is False
    harness.run(30)
    with seeded.app_context():
        ok, detail = feed_health()
        assert ok and detail["last_tick_age_s"] < 1
        clock.advance(30_000)
        ok, detail = feed_health()
        assert not ok and detail["last_tick_age_s"] >= 30


def test_healthz_includes_the_feed(harness, seeded):
    seeded.config["HEALTHZ_TOKEN"] = "feed-test-token"
    response = seeded.test_client().get("/healthz", headers={"X-Healthz-Token": "feed-test-token"})
    assert response.status_code == 200
    assert "feed" in response.get_json()["checks"]


def test_feed_run_stops_after_its_time_and_writes_its_last_batch(seeded):
    seeded.config.update(FEED_TICK_INTERVAL_MS=20, TICK_FLUSH_INTERVAL_MS=10_000)
    feed = PriceFeed(seeded, seed=3, emit=lambda s, f: None, adapters=False)
    feed.run(seconds=0.5)
    assert feed.ticks_produced > 0
    assert tick_count(seeded) == feed.ticks_produced


def test_each_flush_sends_the_board_one_message_with_every_ready_frame():
    per_symbol, boards = [], []
    clock = FakeClock()
    coalescer = TickCoalescer(lambda symbol, frame: per_symbol.append(frame), interval=0.1, clock=clock.monotonic,
                              emit_board=boards.append)

    def tick(symbol, mid, ts):
        coalescer.add(quotes.Quote(symbol, Decimal(mid), Decimal(mid), Decimal(mid), None, ts, "SIM"), 2)

    for symbol in ("A", "B", "C"):
        tick(symbol, "1.00", 1000)
    assert coalescer.flush() == 3
    assert len(boards) == 1 and [f["symbol"] for f in boards[0]] == ["A", "B", "C"]
    assert boards[0] == per_symbol  # the same frames, one message
    tick("A", "1.01", 1010)
    assert coalescer.flush() == 0 and len(boards) == 1  # nothing ready: no empty board message
    clock.advance(100)
    assert coalescer.flush() == 1
    assert [f["symbol"] for f in boards[-1]] == ["A"]


def test_a_full_buffer_drops_ticks_only_into_a_recorded_gap_and_reports_them(seeded, clock, monkeypatch, caplog):
    """The store is unreachable for longer than the buffer holds: the oldest ticks go, but
    each symbol's lost stretch is written as a gap once the store is back, logged, and
    counted in the heartbeat (/healthz shows it)."""
    seeded.config["EMBEDDED_SERVICES"] = True
    harness = FeedHarness(seeded, clock)
    feed = harness.feed
    with seeded.app_context():
        feed.writer.epoch = store.take_authority(clock.now_ms())
        engine_type = type(db.engine)
    feed.writer.max_buffer = 20
    harness.run(1)  # the tick ids are reserved while the store is up
    original = engine_type.begin
    monkeypatch.setattr(engine_type, "begin", lambda self: (_ for _ in ()).throw(RuntimeError("store down")))
    harness.run(60)  # 3 s at 50 ms a pass: 6 ticks for each of 8 markets, 20 kept
    monkeypatch.setattr(engine_type, "begin", original)
    assert feed.writer.dropped == feed.ticks_produced - 20 > 0
    assert caplog.text.count("dropped the oldest unwritten ticks") == 1
    harness.run(10)
    with seeded.app_context():
        feed.flush_ticks()
        gaps = db.session.scalars(select(TickGap)).all()
        assert sum(gap.ticks_lost for gap in gaps) == feed.writer.dropped
        assert {gap.reason for gap in gaps} == {"buffer_full"} and len({gap.symbol for gap in gaps}) == len(gaps)
        assert tick_count(seeded) == feed.ticks_produced - feed.writer.dropped
        assert ticks.flushed_watermark() == clock.now_ms() - 1
        feed.beat()
        ok, detail = feed_health()
        assert detail["ticks_dropped"] == feed.writer.dropped


class _Listener:
    """Records what the feed tells a tick listener, and what the tick store held then."""

    def __init__(self, app):
        self.app = app
        self.calls: list = []

    def __call__(self, rows):
        stored = set(db.session.scalars(select(Tick.id).where(Tick.id.in_([row.id for row in rows]))))
        self.calls.append(("ticks", [row.id for row in rows], stored))

    def on_authority(self, held: bool) -> None:
        self.calls.append(("authority", held))


def test_tick_listeners_get_each_flushed_batch_after_its_commit_in_id_order(seeded):
    seeded.config.update(FEED_TICK_INTERVAL_MS=20, TICK_FLUSH_INTERVAL_MS=100)
    listener = _Listener(seeded)
    seeded.extensions["tick_listeners"] = [lambda rows: 1 / 0, listener]  # a failing listener harms no one
    feed = PriceFeed(seeded, seed=3, emit=lambda s, f: None, adapters=False)
    feed.run(seconds=0.6)
    assert listener.calls[0] == ("authority", True) and listener.calls[-1] == ("authority", False)
    batches = [call for call in listener.calls[1:-1]]
    assert all(kind == "ticks" for kind, *_ in batches) and len(batches) >= 3
    told = [tick_id for _, ids, stored in batches for tick_id in ids]
    for _, ids, stored in batches:
        assert set(ids) == stored  # committed before the listener hears of them
    assert told == sorted(told) and len(told) == len(set(told))
    with seeded.app_context():
        assert told == list(db.session.scalars(select(Tick.id).order_by(Tick.id)))  # every tick, once
