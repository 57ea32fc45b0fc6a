"""The price-authority lock on a real Redis, and the tick store's fence on SQLite and
PostgreSQL: a holder whose lease ran out stops producing, and a paused old holder cannot
write ticks or quotes after the next one took over."""

from __future__ import annotations

import math
import threading
import time
from decimal import Decimal

import pytest
from redis.exceptions import LockNotOwnedError
from sqlalchemy import func, select

from edutradex.extensions import db
from edutradex.market import quotes, store, ticks
from edutradex.market.authority import AuthorityLock, AuthorityLost
from edutradex.market.feed import PriceFeed
from edutradex.market.models import FeedAuthority, Tick, TickGap
from tests.conftest import build_app
from tests.market.conftest import T0, FakeClock
from tests.support.waiting import wait_for


def row(tick_id: int, ts_ms: int, epoch: int | None, symbol: str = "OTC_GOLD") -> store.TickRow:
    return store.TickRow(tick_id, symbol, ts_ms, Decimal("1.0"), Decimal("1.2"), Decimal("1.1"), "SIM", epoch)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_app(request, tmp_path):
    if request.param == "sqlite":
        app = build_app(f"sqlite:///{tmp_path / 'fence.db'}")
    else:
        app = build_app(request.getfixturevalue("postgres_url"))
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


# ---- the lease ----------------------------------------------------------------------------

@pytest.mark.redis
def test_one_holder_at_a_time_and_a_late_holder_stops(redis_app):
    with redis_app.app_context():
        first = AuthorityLock(redis_app, ttl=0.6, margin=0.2)
        second = AuthorityLock(redis_app, ttl=0.6, margin=0.2)
        assert first.acquire(T0) and first.held()
        assert not second.acquire(T0)
        for _ in range(8):  # renewals keep it, well past the TTL
            time.sleep(0.1)
            first.renew()
            assert not second.acquire(T0)
        time.sleep(0.7)  # no renewal: the lease runs out
        assert not first.held()
        with pytest.raises(AuthorityLost):
            first.renew()
        assert second.acquire(T0) and second.epoch == first.epoch + 1
        # the Lua scripts act only for the owner: the old holder can neither extend nor free the new lease
        with pytest.raises(LockNotOwnedError):
            first.lease.extend(5, replace_ttl=True)
        first.release()
        assert second.lease.owned()
        second.renew()
        assert second.held()


@pytest.mark.redis
def test_a_refused_renewal_stops_production_at_once(redis_app):
    clock = FakeClock()
    with redis_app.app_context():
        feed = PriceFeed(redis_app, seed=3, emit=lambda *a: None, emit_board=None, clock_ms=clock.now_ms,
                         monotonic=clock.monotonic, adapters=False)
        lock = AuthorityLock(redis_app, monotonic=clock.monotonic)
        assert lock.acquire(clock.now_ms())
        feed.authority, feed.writer.epoch = lock, lock.epoch
        feed.reload_markets()
        clock.advance(600)
        assert feed.run_once() > 0
        produced = feed.ticks_produced
        lock.redis.delete("edutradex:feed:lock")  # the lease expired in Redis; someone else may have it
        clock.advance(1100)  # a renewal is due
        with pytest.raises(AuthorityLost):
            lock.renew()
        with pytest.raises(AuthorityLost):
            feed.run_once()
        assert feed.ticks_produced == produced


@pytest.mark.redis
def test_a_holder_past_its_deadline_makes_no_tick(redis_app):
    """Paused (SIGSTOP, a frozen VM) longer than the lease: on resuming it stops before the next tick."""
    clock = FakeClock()
    with redis_app.app_context():
        feed = PriceFeed(redis_app, seed=3, emit=lambda *a: None, emit_board=None, clock_ms=clock.now_ms,
                         monotonic=clock.monotonic, adapters=False)
        lock = AuthorityLock(redis_app, monotonic=clock.monotonic)
        assert lock.acquire(clock.now_ms())
        feed.authority, feed.writer.epoch = lock, lock.epoch
        feed.reload_markets()
        clock.advance(600)
        feed.run_once()
        before = (feed.ticks_produced, quotes.latest_quote("OTC_GOLD"))
        clock.advance(int((lock.ttl - lock.margin) * 1000))  # nothing renewed in between
        with pytest.raises(AuthorityLost):
            feed.run_once()
        assert (feed.ticks_produced, quotes.latest_quote("OTC_GOLD")) == before


@pytest.mark.redis
def test_a_resumed_old_holder_cannot_overwrite_the_quote(redis_app):
    with redis_app.app_context():
        old = AuthorityLock(redis_app, ttl=0.3, margin=0.1)
        new = AuthorityLock(redis_app, ttl=5)
        assert old.acquire(T0)
        quotes.publish_quote(quotes.Quote("OTC_GOLD", Decimal("1"), Decimal("1"), Decimal("1"), 1, T0, "SIM"), old)
        time.sleep(0.4)
        assert new.acquire(T0)
        mine = quotes.Quote("OTC_GOLD", Decimal("2"), Decimal("2"), Decimal("2"), 2, T0 + 1, "SIM")
        quotes.publish_quote(mine, new)
        # even a holder whose clock missed the pause is refused by Redis itself
        old.valid_until = math.inf
        with pytest.raises(AuthorityLost):
            quotes.publish_quote(quotes.Quote("OTC_GOLD", Decimal("9"), Decimal("9"), Decimal("9"), 3, T0 + 2, "SIM"),
                                 old)
        assert quotes.latest_quote("OTC_GOLD") == mine


@pytest.mark.redis
def test_the_feed_loop_stands_by_after_losing_the_lock_and_takes_it_back(redis_app):
    feed = PriceFeed(redis_app, seed=3, emit=lambda *a: None, emit_board=None, adapters=False)
    runner = threading.Thread(target=feed.run, kwargs={"seconds": 20}, daemon=True)
    runner.start()
    try:
        with redis_app.app_context():
            wait_for(lambda: feed.ticks_produced > 3 and _watermark(), message="the feed producing and storing")
            first_epoch = feed.writer.epoch
            thief = AuthorityLock(redis_app, ttl=2)
            thief.redis.delete("edutradex:feed:lock")
            wait_for(lambda: thief.acquire(quotes.now_ms()), message="another holder taking the lock")
        wait_for(lambda: feed.authority is None, message="the feed noticing")
        stopped = feed.ticks_produced
        time.sleep(1.0)
        assert feed.ticks_produced == stopped  # standing by, not producing
        thief.release()
        wait_for(lambda: feed.ticks_produced > stopped, message="the feed taking the authority back")
        assert feed.writer.epoch == thief.epoch + 1 > first_epoch
    finally:
        feed.stop()
        runner.join(10)
    with redis_app.app_context():
        # nothing the feed made in its first tenure was written after the thief took over
        late = db.session.scalar(select(func.count(Tick.id)).where(Tick.epoch == first_epoch,
                                                                   Tick.ts_ms > _gap_start(thief.epoch)))
        assert late == 0


def _watermark() -> int | None:
    db.session.rollback()
    return ticks.flushed_watermark()


def _gap_start(epoch: int) -> int:
    """Taking over from a holder that did not stop cleanly records a gap from its watermark."""
    gap = db.session.scalars(select(TickGap).where(TickGap.reason == "authority_lost").order_by(TickGap.id)).first()
    assert gap is not None and gap.symbol is None
    return gap.from_ms - 1


# ---- the fence in the tick store ---------------------------------------------------------------

def test_a_paused_writer_cannot_write_after_a_takeover(store_app):
    with store_app.app_context():
        old = store.TickWriter(flush_interval=0)
        old.epoch = store.take_authority(T0)
        old.add(row(1, T0 + 5, old.epoch))
        assert old.flush(T0 + 10) == 1
        assert ticks.flushed_watermark() == T0 + 10
        old.add(row(2, T0 + 20, old.epoch))  # made, then the holder was paused before its flush
        new_epoch = store.take_authority(T0 + 500)
        assert new_epoch == old.epoch + 1
        with pytest.raises(store.StaleAuthority):
            old.flush(T0 + 600)
        assert db.session.get(Tick, 2) is None
        assert ticks.flushed_watermark() == T0 + 10
        # its unwritten ticks are a recorded gap, from its watermark to the takeover
        [gap] = db.session.scalars(select(TickGap)).all()
        assert (gap.symbol, gap.from_ms, gap.to_ms, gap.reason) == (None, T0 + 11, T0 + 500, "authority_lost")
        new = store.TickWriter(flush_interval=0)
        new.epoch = new_epoch
        new.add(row(3, T0 + 501, new_epoch))
        assert new.flush(T0 + 700) == 1 and ticks.flushed_watermark() == T0 + 700


def test_a_clean_stop_leaves_no_gap(store_app):
    with store_app.app_context():
        old = store.TickWriter(flush_interval=0)
        old.epoch = store.take_authority(T0)
        old.add(row(1, T0 + 5, old.epoch))
        old.flush(T0 + 10, final=True)
        store.take_authority(T0 + 5000)
        assert db.session.scalar(select(func.count(TickGap.id))) == 0
        assert db.session.get(FeedAuthority, 1).clean is False  # the new holder is running
