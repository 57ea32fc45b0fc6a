"""SIGKILL while positions with SL/TP are open, with the real app process (its embedded
price feed runs the CFD engine) on PostgreSQL: the price crosses an SL while the process is
down (the ticks recorded as the feed records them); after the restart the position is closed
once, at the recorded tick that crossed, not at the restart price; a second crash and
restart changes nothing."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from sqlalchemy import select

from config import TestingConfig
from edutradex import create_app
from edutradex.competitions.models import CfdEngineState, CfdFill, CfdPosition
from edutradex.extensions import db
from tests.competitions.cfd import live_account
from tests.competitions.test_engine import EUR, Ticks, open_position
from tests.support.live import LiveServer

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
D = Decimal


def wait_for(check, timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.remove()
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def engine_watermark() -> int | None:
    return db.session.scalar(select(CfdEngineState.last_tick_id).where(CfdEngineState.symbol == EUR))


def closes(position_id: int) -> list[CfdFill]:
    return list(db.session.scalars(select(CfdFill).where(CfdFill.position_id == position_id,
                                                         CfdFill.action == "CLOSE")))


def test_sigkill_with_stops_open_then_a_crossing_while_down_closes_once_at_the_recorded_tick(tmp_path, postgres_url):
    server = LiveServer(tmp_path / "live", DATABASE_URL=postgres_url, FEED_TICK_INTERVAL_MS="200")
    server.prepare()
    checker = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=postgres_url)
    with checker.app_context():
        _, participant_id, _ = live_account()
        record = Ticks()
        opened_at = record(EUR, "1.10000", "1.10020")
        long_id = open_position(participant_id, opened_at, "1", stop_loss="1.09000", take_profit="1.20000")
        short_id = open_position(participant_id, opened_at, "1", side="SELL", stop_loss="1.20000")
        db.session.remove()

    server.start()
    try:
        with checker.app_context():
            # the engine took the authority with the feed and moves its watermark past the open
            wait_for(lambda: (engine_watermark() or 0) > opened_at.id, what="the engine's watermark")
        server.kill()
        with checker.app_context():
            db.session.remove()
            assert db.session.get(CfdPosition, long_id).status == "OPEN"
            # while it is down, the price crosses the long's SL and comes back
            record = Ticks()  # ids from the same reservation as the feed's: above every tick it made
            record(EUR, "1.09500", "1.09520")
            crossing = record(EUR, "1.08950", "1.08970")
            record(EUR, "1.08000", "1.08020")
            record(EUR, "1.10000", "1.10020")  # where the restarted feed carries on from
            db.session.remove()

        server.start()
        with checker.app_context():
            wait_for(lambda: db.session.get(CfdPosition, long_id).status == "CLOSED", what="the SL after restart")
            closed = db.session.get(CfdPosition, long_id)
            assert (closed.close_reason, closed.close_price) == ("STOP_LOSS", D("1.08950"))
            [fill] = closes(long_id)
            assert (fill.tick_id, fill.bid, fill.ask) == (crossing.id, D("1.08950"), D("1.08970"))
            assert db.session.get(CfdPosition, short_id).status == "OPEN"
            db.session.remove()

        server.kill()  # once more: a second crash and restart closes nothing twice
        server.start()
        time.sleep(2.0)
        with checker.app_context():
            assert len(closes(long_id)) == 1 and closes(short_id) == []
            db.session.remove()
    finally:
        server.stop()
        with checker.app_context():
            db.engine.dispose()
