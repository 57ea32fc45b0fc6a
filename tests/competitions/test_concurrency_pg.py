"""Real races on PostgreSQL: threads released at the same instant, each with its own
session and connection."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, insert, select

from edutradex.auth.models import User
from edutradex.competitions import lifecycle, service
from edutradex.competitions.models import Competition, Participant
from edutradex.errors import Conflict
from edutradex.extensions import db
from edutradex.wallet.ledger import InsufficientFunds
from edutradex.wallet.models import LedgerEntry, Wallet
from tests.competitions.conftest import assert_books_balance, fund, open_competition, participants, trader
from tests.support.concurrency import run_in_threads

pytestmark = pytest.mark.postgres
D = Decimal


def bulk_traders(count: int, credits: str) -> list[int]:
    """Users without the password hashing (fast), funded through the ledger."""
    first = db.session.scalar(select(func.coalesce(func.max(User.id), 0)))
    db.session.execute(insert(User), [
        {"email": f"racer{first + n}@example.com", "name": f"Racer {n}", "password_hash": "x", "role": "USER",
         "active": True, "demo_balance": D("10000.00"), "session_nonce": f"{first + n:016x}"} for n in range(count)])
    db.session.commit()
    ids = list(db.session.scalars(select(User.id).where(User.id > first).order_by(User.id)))
    for user_id in ids:
        fund(user_id, credits)
    return ids


def test_100_parallel_joins_for_10_seats(pg_app):
    with pg_app.app_context():
        competition = open_competition(entry_fee="10.00", max_participants=10)
        users = bulk_traders(100, "15.00")
        competition_id = competition.id

    outcomes = run_in_threads(pg_app, 100, lambda i: service.join_competition(competition_id, users[i]))

    with pg_app.app_context():
        joined = [o for o in outcomes if isinstance(o, service.JoinResult)]
        refused = [o for o in outcomes if not isinstance(o, service.JoinResult)]
        assert len(joined) == 10
        assert all(isinstance(o, Conflict) and o.message == "This competition is full." for o in refused), refused[:3]
        assert sorted(o.seats_taken for o in joined) == list(range(1, 11))
        assert len(participants(competition_id)) == 10
        assert db.session.get(Competition, competition_id).seats_taken == 10
        fees = db.session.scalars(select(LedgerEntry.amount).where(LedgerEntry.entry_type == "competition_entry",
                                                                   LedgerEntry.wallet_id.is_not(None))).all()
        assert fees == [D("-10.00")] * 10
        assert service.pool_balance(competition_id) == D("100.00")
        assert db.session.scalar(select(func.min(Wallet.balance))) >= 0
        assert db.session.scalar(select(func.count()).where(Wallet.balance == D("5.00"))) == 10
        assert_books_balance(pg_app)


def test_one_trader_joining_ten_times_at_once_pays_once(pg_app):
    with pg_app.app_context():
        competition = open_competition(entry_fee="10.00", max_participants=10)
        user = trader("100.00")
        competition_id = competition.id

    outcomes = run_in_threads(pg_app, 10, lambda i: service.join_competition(competition_id, user))

    with pg_app.app_context():
        assert sum(isinstance(o, service.JoinResult) for o in outcomes) == 1
        assert all(isinstance(o, service.JoinResult) or o.message == "You are already in this competition."
                   for o in outcomes)
        assert db.session.get(Competition, competition_id).seats_taken == 1
        assert db.session.get(Wallet, db.session.scalar(select(Wallet.id).where(Wallet.user_id == user))).balance == D("90.00")
        assert_books_balance(pg_app)


def test_joins_across_competitions_with_one_wallet_never_overdraw(pg_app):
    """20 competitions, one trader with credits for 5 entries, all at once."""
    with pg_app.app_context():
        ids = [open_competition(entry_fee="10.00").id for _ in range(20)]
        user = trader("50.00")

    outcomes = run_in_threads(pg_app, 20, lambda i: service.join_competition(ids[i], user))

    with pg_app.app_context():
        assert sum(isinstance(o, service.JoinResult) for o in outcomes) == 5
        assert all(isinstance(o, service.JoinResult | InsufficientFunds) for o in outcomes)
        assert db.session.scalar(select(func.count(Participant.id))) == 5
        assert_books_balance(pg_app)


def test_two_clocks_settle_once(pg_app):
    """Two clocks (and a third thread of each step) race through start, end and settle."""
    with pg_app.app_context():
        competition = open_competition(entry_fee="10.00", min_participants=2)
        users = [trader() for _ in range(4)]
        for user in users:
            service.join_competition(competition.id, user)
        for n, participant in enumerate(participants(competition.id)):
            participant.equity = D(10000 + 100 * n)
            participant.trades_count = 1
        db.session.commit()
        competition_id, start, end = competition.id, competition.start_at, competition.end_at

    started = run_in_threads(pg_app, 8, lambda i: lifecycle.start_competition(competition_id, start))
    assert sorted(map(str, started)) == ["LIVE"] + ["None"] * 7
    ended = run_in_threads(pg_app, 8, lambda i: lifecycle.end_competition(competition_id, end))
    assert sorted(ended) == [False] * 7 + [True]
    settled = run_in_threads(pg_app, 8, lambda i: lifecycle.settle_competition(competition_id, end))
    assert sum(s is not None for s in settled) == 1 and all(not isinstance(s, Exception) for s in settled)
    # and whole clock cycles racing on an already settled competition do nothing
    cycles = run_in_threads(pg_app, 4, lambda i: lifecycle.run_overdue(end + timedelta(minutes=1)))
    assert cycles == [0, 0, 0, 0]

    with pg_app.app_context():
        prizes = db.session.scalars(select(LedgerEntry.amount).where(LedgerEntry.entry_type == "competition_prize",
                                                                     LedgerEntry.wallet_id.is_not(None))
                                    .order_by(LedgerEntry.amount.desc())).all()
        assert prizes == [D("22.40"), D("6.40"), D("3.20")]  # 40.00 - 20 % = 32.00: 70/20/10
        assert db.session.get(Competition, competition_id).status == "SETTLED"
        assert_books_balance(pg_app)


def test_cancel_racing_the_start_happens_once(pg_app):
    with pg_app.app_context():
        competition = open_competition(entry_fee="10.00", min_participants=1)
        users = [trader() for _ in range(3)]
        for user in users:
            service.join_competition(competition.id, user)
        competition_id, start = competition.id, competition.start_at

    def race(i: int):
        if i % 2:
            return lifecycle.start_competition(competition_id, start)
        return service.cancel_competition(competition_id, "Admin cancels", now=start)

    outcomes = run_in_threads(pg_app, 6, race)
    with pg_app.app_context():
        status = db.session.get(Competition, competition_id).status
        refunds = db.session.scalar(select(func.count()).where(LedgerEntry.entry_type == "competition_refund",
                                                               LedgerEntry.wallet_id.is_not(None)))
        # Either a cancel won before the start (3 refunds, once), or the start won and
        # cancels then cancelled the live competition (still 3 refunds, once).
        assert status == "CANCELLED" and refunds == 3
        assert sum(o == 3 for o in outcomes) == 1
        assert_books_balance(pg_app)


def test_terms_edits_racing_the_first_joins_never_charge_a_fee_other_than_the_locked_one(pg_app):
    with pg_app.app_context():
        competition = open_competition(entry_fee="10.00", max_participants=10)
        users = bulk_traders(6, "100.00")
        competition_id = competition.id

    def race(i: int):
        if i % 2:
            return service.join_competition(competition_id, users[i // 2])
        return service.update_competition(competition_id, {"entry_fee": f"{20 + i}.00"})

    outcomes = run_in_threads(pg_app, 12, race)
    with pg_app.app_context():
        assert all(not isinstance(o, Exception) or "terms are locked" in str(o) for o in outcomes), outcomes
        fee = db.session.get(Competition, competition_id).entry_fee
        paid = [p.fees_paid for p in participants(competition_id)]
        assert len(paid) == 6 and set(paid) == {fee}
        entries = db.session.scalars(select(LedgerEntry.amount).where(LedgerEntry.entry_type == "competition_entry",
                                                                      LedgerEntry.wallet_id.is_not(None))).all()
        assert entries == [-fee] * 6
        assert_books_balance(pg_app)
