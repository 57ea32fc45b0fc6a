"""Two real `flask feed run` processes on real PostgreSQL and Redis. The holder is paused
(SIGSTOP) past the lock's TTL, the standby takes over, the old holder is resumed
(SIGCONT): it records nothing after the takeover, it stands by, and every trade settles
at the price the store recorded for it (or is refunded where the paused holder's unwritten
ticks were lost)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from config import TestingConfig
from edutradex import create_app
from edutradex.binary.models import Trade
from edutradex.binary.service import place_trade
from edutradex.binary.settlement import decide, settle_overdue
from edutradex.extensions import db
from edutradex.market import feed as feed_module
from edutradex.market.models import Tick, TickGap
from edutradex.market.quotes import now_ms
from edutradex.market.ticks import flushed_watermark, gaps_overlapping, tick_at_or_before
from tests.factories import make_user
from tests.support.live import ROOT, LiveServer
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]
SYMBOL = "OTC_EUR_USD"


class FeedProcess:
    def __init__(self, env: dict, log_path):
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.process = subprocess.Popen([sys.executable, "-m", "flask", "feed", "run", "--seconds", "120"],
                                        cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.log.close()


@pytest.fixture
def production(tmp_path, postgres_url, redis_url):
    env = LiveServer(tmp_path / "env", DATABASE_URL=postgres_url, REDIS_URL=redis_url, EMBEDDED_SERVICES="0",
                     FEED_TICK_INTERVAL_MS="200").prepare().env
    app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=postgres_url, REDIS_URL=redis_url)
    processes: list[FeedProcess] = []
    try:
        yield app, env, processes
    finally:
        for process in processes:
            process.stop()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def fresh(query):
    db.session.rollback()
    return db.session.scalar(query)


def ticks_of(epoch: int):
    return select(func.count(Tick.id)).where(Tick.epoch == epoch)


def test_a_paused_holder_records_nothing_after_the_standby_took_over(production, tmp_path):
    app, env, processes = production
    old = FeedProcess(env, tmp_path / "old.log")
    processes.append(old)
    with app.app_context():
        wait_for(lambda: fresh(ticks_of(1)) > 10, timeout=60, message="the first feed storing ticks")
        standby = FeedProcess(env, tmp_path / "standby.log")
        processes.append(standby)
        wait_for(lambda: "standing by" in standby.output(), timeout=60, message="the second feed standing by")

        user_id = make_user().id
        # expires well after the takeover: settled on the new holder's ticks
        later = place_trade(user_id, SYMBOL, "UP", "10.00", 15, "authority-later-0001")
        # expires while the holder is paused (the lease outlives the pause by 4 s or more):
        # its price may be among the ticks the holder made and never wrote
        paused = place_trade(user_id, SYMBOL, "DOWN", "10.00", 5, "authority-paused-001")
        time.sleep(1.5)

        old.process.send_signal(signal.SIGSTOP)
        stopped_ms = now_ms()
        wait_for(lambda: fresh(ticks_of(2)) > 0, timeout=30, message="the standby taking over")
        took_over_ms = now_ms()
        assert took_over_ms - stopped_ms >= 3000  # it waited for the lease to run out
        recorded_by_old = fresh(ticks_of(1))

        old.process.send_signal(signal.SIGCONT)
        wait_for(lambda: "lost the price authority" in old.output(), timeout=30,
                 message="the old holder noticing it lost the authority")
        time.sleep(3.0)  # it has every chance to write what it had buffered

        # nothing of the old holder was recorded after the takeover, nor made after its pause
        assert fresh(ticks_of(1)) == recorded_by_old
        assert fresh(select(func.max(Tick.ts_ms)).where(Tick.epoch == 1)) <= stopped_ms
        # its unwritten ticks are a recorded gap, from its watermark to the takeover
        [gap] = db.session.scalars(select(TickGap)).all()
        assert gap.symbol is None and gap.reason == "authority_lost"
        assert gap.from_ms <= stopped_ms <= gap.to_ms <= took_over_ms
        # the new holder keeps producing, the old one stands by; the heartbeat is the new one's
        produced = fresh(ticks_of(2))
        wait_for(lambda: fresh(ticks_of(2)) > produced, message="the new holder producing")
        assert "standing by" in old.output().split("lost the price authority")[-1]
        assert feed_module.read_heartbeat()["epoch"] == 2
        assert fresh(select(func.count(Tick.id)).where(Tick.epoch.notin_([1, 2]))) == 0

        # settlement: each trade at the recorded price, or refunded across the gap
        wait_for(lambda: (db.session.rollback() or flushed_watermark() or 0) > later.expires_ms, timeout=60,
                 message="the watermark passing the expiry")
        # no RQ worker runs here, so the feed's own settlement clock runs its jobs in-process
        # (JOBS_IN_PROCESS_WITHOUT_WORKER) and may have settled some already: settle the rest
        settle_overdue()
        wait_for(lambda: fresh(select(func.count(Trade.id)).where(Trade.status == "OPEN")) == 0, timeout=30,
                 message="both trades settled")
        db.session.rollback()
        for trade in db.session.scalars(select(Trade).order_by(Trade.id)):
            exit_tick = tick_at_or_before(SYMBOL, trade.expires_ms)
            since = max(trade.entry_ts_ms, exit_tick.ts_ms if exit_tick else trade.entry_ts_ms)
            across_gap = bool([g for g in gaps_overlapping(SYMBOL, since + 1, trade.expires_ms)
                               if g.from_ms <= trade.expires_ms and g.to_ms > since])
            assert (trade.result, trade.rule) == decide(trade.direction, trade.entry_price, trade.entry_ts_ms,
                                                        exit_tick, across_gap)
            if trade.id == later.id:
                assert trade.rule == "COMPARE" and trade.exit_tick_id == exit_tick.id
                assert db.session.get(Tick, trade.exit_tick_id).epoch == 2
            else:
                assert trade.id == paused.id and trade.rule == "PRICE_GAP" and trade.payout == Decimal("10.00")
