"""SIGKILL during prize paying, with the real app process on PostgreSQL: the competition
ended while the app was down, the clock settles it on start-up and the process is killed
between two postings of the settlement (COMPETITION_CRASH_POINT=competition-prize: the fee
and the prizes posted, the leftover and the commit not). After a restart every prize is
paid exactly once and `flask wallet verify` (run as its own process) is clean."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from config import TestingConfig
from edutradex import create_app
from edutradex.competitions import lifecycle, service
from edutradex.competitions.models import Competition
from edutradex.extensions import db
from edutradex.types import utcnow
from edutradex.wallet.models import LedgerEntry
from tests.competitions.conftest import balance, open_competition, participants, trader
from tests.competitions.test_lifecycle import move_times
from tests.support.live import ROOT, LiveServer

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
D = Decimal


def prize_entries(competition_id: int) -> dict[str, int]:
    db.session.expire_all()
    rows = db.session.execute(select(LedgerEntry.idempotency_key, func.count()).where(
        LedgerEntry.entry_type == "competition_prize", LedgerEntry.reference == f"competition:{competition_id}")
        .group_by(LedgerEntry.idempotency_key)).all()
    return dict(rows)


def test_sigkill_while_paying_prizes_pays_each_prize_once_after_restart(tmp_path, postgres_url):
    server = LiveServer(tmp_path / "live", DATABASE_URL=postgres_url)
    server.prepare()  # `flask db upgrade` (migrations up to 0005_competitions) and the seed
    checker = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=postgres_url)
    with checker.app_context():
        competition = open_competition(entry_fee="10.00", min_participants=1)
        users = [trader("100.00") for _ in range(4)]
        for user in users:
            service.join_competition(competition.id, user)
        for n, participant in enumerate(participants(competition.id)):
            participant.trades_count, participant.equity = 1, D(12000 - 500 * n)
        db.session.commit()
        lifecycle.start_competition(competition.id, competition.start_at)
        now = utcnow()
        move_times(competition.id, start=now - timedelta(hours=1), end=now - timedelta(seconds=5))
        cid = competition.id
        db.session.remove()

    # The app comes back after the end and is killed while paying the prizes.
    env = {**server.env, "COMPETITION_CRASH_POINT": "competition-prize"}
    with open(server.log_path, "ab") as log:
        process = subprocess.Popen([sys.executable, "wsgi.py"], cwd=ROOT, env=env, stdout=log, stderr=log)
        try:
            code = process.wait(90)
        finally:
            if process.poll() is None:
                process.kill()
    assert code == -signal.SIGKILL, server.log_path.read_text()[-3000:]
    assert "crash point competition-prize" in server.log_path.read_text()
    with checker.app_context():
        # the end committed (its own transaction); the half-paid settlement did not
        assert db.session.get(Competition, cid).status == "ENDED"
        assert prize_entries(cid) == {}
        assert service.pool_balance(cid) == D("40.00")
        db.session.remove()

    server.start()
    try:
        with checker.app_context():
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and db.session.get(Competition, cid).status != "SETTLED":
                db.session.remove()
                time.sleep(0.2)
            assert db.session.get(Competition, cid).status == "SETTLED"
            # pool 40.00 - 20 % = 32.00: 22.40 / 6.40 / 3.20, each posted once (two legs)
            assert prize_entries(cid) == {f"competition-prize:{cid}:{u}": 2 for u in users[:3]}
            assert [balance(u) for u in users] == [D("112.40"), D("96.40"), D("93.20"), D("90.00")]
            assert service.pool_balance(cid) == D("0.00")
            db.session.remove()
        assert "OK" in server.flask("wallet", "verify")
        server.stop()
        server.start()  # and once more: nothing is paid twice
        time.sleep(2.0)
        with checker.app_context():
            assert len(prize_entries(cid)) == 3 and balance(users[0]) == D("112.40")
            db.session.remove()
    finally:
        server.stop()
        with checker.app_context():
            db.engine.dispose()
