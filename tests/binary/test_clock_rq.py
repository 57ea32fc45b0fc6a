"""With JOBS_MODE=rq the clock enqueues one job per (symbol, second), never per trade."""

from __future__ import annotations

from decimal import Decimal

import pytest

from edutradex import jobs
from edutradex.auth.models import User
from edutradex.binary.service import place_trade
from edutradex.binary.settlement import batch_job_id, run_clock_cycle, settle_batch
from edutradex.extensions import db
from edutradex.settings import set_setting
from tests.binary.conftest import add_tick, live_quote, make_market
from tests.conftest import build_app
from tests.factories import make_user

pytestmark = pytest.mark.redis
SYMBOL = "OTC_EUR_USD"


def test_clock_enqueues_one_job_per_symbol_second(tmp_path, redis_url, clock):
    app = build_app(f"sqlite:///{tmp_path / 'rq.db'}", REDIS_URL=redis_url, JOBS_MODE="rq")
    with app.app_context():
        make_market(SYMBOL)
        set_setting("max_open_trades", "100")
        db.session.commit()
        user_id = make_user().id
        # 60 s trades: every entry is well before the first expiry however slow the loop is
        with live_quote(app, SYMBOL):
            trades = [place_trade(user_id, SYMBOL, "UP", "10", 60, f"rq-key-{i:04d}") for i in range(30)]
        first, last = min(t.expires_ms for t in trades), max(t.expires_ms for t in trades)
        add_tick(SYMBOL, first, "1.2")
        add_tick(SYMBOL, last + 1, "1.2")
        clock.ms = last + 1
        seconds = sorted({t.expires_ms // 1000 for t in trades})

        assert run_clock_cycle(last + 1) == len(seconds)
        queued = jobs.queue().job_ids
        assert sorted(queued) == sorted(batch_job_id(SYMBOL, s) for s in seconds)
        assert run_clock_cycle(last + 1) == len(seconds)  # same ids while queued: no duplicates
        assert len(jobs.queue().job_ids) == len(seconds)

        for second in seconds:  # what the worker runs; a retried job changes nothing
            settle_batch(SYMBOL, second)
            settle_batch(SYMBOL, second)
        db.session.expire_all()
        assert db.session.get(User, user_id).demo_balance == Decimal("10000.00") - 300 + 30 * Decimal("18.00")
        db.session.remove()
        db.engine.dispose()
