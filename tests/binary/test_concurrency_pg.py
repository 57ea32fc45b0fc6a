"""Concurrency on a real PostgreSQL: no overdraft, no double payment, no deadlock."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from edutradex.auth.models import User
from edutradex.auth.service import reset_demo_balance
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


def test_demo_reset_and_settlement_at_once_never_deadlock(pg_app, clock):
    """A demo reset (auth.service) and a settlement (binary.settlement) of the same users'
    trades at the same instant, 200 times. Both must take the row locks in the one order
    (users, in id order, then trades): in opposite orders PostgreSQL kills one of them as
    a deadlock. Every trade ends exactly once and every balance is exact."""
    rounds = 200
    with pg_app.app_context():
        make_market(SYMBOL)
        set_setting("max_open_trades", "1000")
        db.session.commit()
        reset_ids = [make_user().id for _ in range(3)]
        kept_id = make_user().id  # settled alongside, never reset: its balance is the running sum
    kept_balance = Decimal("10000.00")
    failures: list[str] = []

    def race(round_no: int, settle_to: int):
        def work(i: int):
            if i == 0:
                return settle_due_trades(SYMBOL, settle_to)
            # the resets start at staggered offsets, so the rounds cover many interleavings
            time.sleep((round_no % 5) * 0.001)
            return reset_demo_balance(reset_ids[i - 1])
        return work

    with live_quote(pg_app, SYMBOL):
        for round_no in range(rounds):
            with pg_app.app_context():
                trades = [place_trade(uid, SYMBOL, direction, "10.00", 60, f"race-{round_no}-{uid}-{direction}")
                          for uid in [*reset_ids, kept_id] for direction in ("UP", "DOWN")]
                first, last = min(t.expires_ms for t in trades), max(t.expires_ms for t in trades)
                add_tick(SYMBOL, first, "1.20000")  # UP wins (pays 18.00), DOWN loses
                add_tick(SYMBOL, last + 1, "1.20000")  # the exit prices are final
                db.session.remove()
            clock.ms = last + 1

            outcomes = run_in_threads(pg_app, 1 + len(reset_ids), race(round_no, last))

            errors = [o for o in outcomes if isinstance(o, Exception)]
            with pg_app.app_context():
                if errors:
                    failures.append(f"round {round_no}: {type(errors[0]).__name__}: {str(errors[0]).splitlines()[0]}")
                    settle_due_trades(SYMBOL, last)  # what the clock would do next: keep the rounds independent
                rows = db.session.execute(select(Trade.id, Trade.user_id, Trade.status, Trade.payout)
                                          .where(Trade.id.in_([t.id for t in trades]))).all()
                balances = dict(db.session.execute(select(User.id, User.demo_balance)).all())
                db.session.remove()
            settled_here = [s.id for s in outcomes[0]] if isinstance(outcomes[0], list) else []
            kept_balance += Decimal("-20.00") + Decimal("18.00")
            problems = []
            if any(r.status == "OPEN" for r in rows):
                problems.append("a trade is still OPEN")
            if len(settled_here) != len(set(settled_here)):
                problems.append("a trade was settled twice")
            if any(r.user_id == kept_id and r.status != "SETTLED" for r in rows):
                problems.append("a trade of a user nobody reset was not settled")
            if any(balances[uid] != Decimal("10000.00") for uid in reset_ids):
                problems.append(f"a reset balance is not the default: {[balances[u] for u in reset_ids]}")
            if balances[kept_id] != kept_balance:
                problems.append(f"balance {balances[kept_id]} != {kept_balance}")
                kept_balance = balances[kept_id]
            if problems:
                failures.append(f"round {round_no}: " + "; ".join(problems))

    assert not failures, f"{len(failures)} problems in {rounds} rounds, e.g. {failures[:3]}"
