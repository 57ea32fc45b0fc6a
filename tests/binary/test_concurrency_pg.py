"""Concurrency on a real PostgreSQL: no overdraft, no double payment."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from edutradex.auth.models import User
from edutradex.binary.models import Trade
from edutradex.binary.service import place_trade
from edutradex.binary.settlement import settle_due_trades
from edutradex.errors import DomainError
from edutradex.extensions import db
from edutradex.settings import set_setting
from tests.binary.conftest import add_tick, live_quote, make_market
from tests.factories import make_user
from tests.support.concurrency import run_in_threads

pytestmark = pytest.mark.postgres
SYMBOL = "OTC_EUR_USD"


def test_fifty_parallel_placements_cannot_overdraw(pg_app):
    with pg_app.app_context():
        make_market(SYMBOL)
        user = make_user()
        user.demo_balance = Decimal("100.00")  # covers exactly 10 trades of 10.00
        set_setting("max_open_trades", "100")
        db.session.commit()
        user_id = user.id

    with live_quote(pg_app, SYMBOL):
        outcomes = run_in_threads(pg_app, 50,
                                  lambda i: place_trade(user_id, SYMBOL, "UP", "10.00", 60, f"parallel-{i:04d}").id)

    placed = [o for o in outcomes if isinstance(o, int)]
    refused = [o for o in outcomes if isinstance(o, DomainError)]
    assert len(placed) == 10 and len(refused) == 40, [o for o in outcomes if not isinstance(o, int | DomainError)]
    assert all("Insufficient balance" in e.message for e in refused)
    with pg_app.app_context():
        assert db.session.get(User, user_id).demo_balance == Decimal("0.00")
        assert db.session.scalar(select(func.count()).select_from(Trade)) == 10


def test_same_key_in_parallel_places_one_trade(pg_app):
    with pg_app.app_context():
        make_market(SYMBOL)
        user_id = make_user().id

    with live_quote(pg_app, SYMBOL):
        outcomes = run_in_threads(pg_app, 8, lambda i: place_trade(user_id, SYMBOL, "UP", "10.00", 60, "double-click-1").id)
    assert len(set(outcomes)) == 1 and isinstance(outcomes[0], int)
    with pg_app.app_context():
        assert db.session.get(User, user_id).demo_balance == Decimal("9990.00")


def test_two_settlers_at_once_pay_each_trade_once(pg_app, clock):
    with pg_app.app_context():
        make_market(SYMBOL)
        set_setting("max_open_trades", "1000")
        db.session.commit()
        users = [make_user().id for _ in range(10)]
        # 60 s trades: every entry is well before the first expiry however slow the loop is
        with live_quote(pg_app, SYMBOL):
            trades = [place_trade(users[i % 10], SYMBOL, "UP", "10.00", 60, f"settle-{i:05d}") for i in range(300)]
        last_expiry = max(t.expires_ms for t in trades)
        add_tick(SYMBOL, min(t.expires_ms for t in trades), "1.20000")
        add_tick(SYMBOL, last_expiry + 1, "1.20000")
    clock.ms = last_expiry + 1

    outcomes = run_in_threads(pg_app, 4, lambda i: [s.id for s in settle_due_trades(SYMBOL, last_expiry)])

    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    settled_ids = [trade_id for ids in outcomes for trade_id in ids]
    assert len(settled_ids) == 300 and len(set(settled_ids)) == 300
    with pg_app.app_context():
        balances = db.session.scalars(select(User.demo_balance).where(User.id.in_(users))).all()
        # each user: 30 trades of 10.00, each won 18.00
        assert balances == [Decimal("10000.00") - 300 + 30 * Decimal("18.00")] * 10
        assert db.session.scalar(select(func.count()).select_from(Trade).where(Trade.status == "OPEN")) == 0
