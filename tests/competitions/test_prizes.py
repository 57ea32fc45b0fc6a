"""The prize split to the cent (pure), and the settlement that pays it (both databases)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from edutradex.competitions import lifecycle, service
from edutradex.competitions.models import Competition
from edutradex.competitions.prizes import Standing, split_pool
from edutradex.extensions import db
from edutradex.wallet.models import LedgerEntry, PlatformAccount, PlatformAccountKind
from tests.competitions.conftest import (
    assert_books_balance,
    balance,
    fund_revenue,
    open_competition,
    participants,
    trader,
)

D = Decimal
TABLE = [D("70"), D("20"), D("10")]


def standings(*ranks: int) -> list[Standing]:
    return [Standing(participant_id=i + 1, user_id=100 + i, rank=rank) for i, rank in enumerate(ranks)]


def test_pool_of_100_01_fee_20_percent_70_20_10():
    split = split_pool(D("100.01"), D("20"), TABLE, standings(1, 2, 3, 4))
    assert split.fee == D("20.00")  # 20.002 half-even
    assert split.net_pool == D("80.01")
    assert split.prizes == {1: D("56.00"), 2: D("16.00"), 3: D("8.00")}  # 56.007, 16.002, 8.001 rounded down
    assert split.leftover == D("0.01") and split.topup == D("0.00")
    assert split.fee + split.paid + split.leftover == D("100.01")


def test_fee_rounds_half_even_to_cents():
    assert split_pool(D("0.25"), D("10"), TABLE, []).fee == D("0.02")  # 0.025 -> 0.02
    assert split_pool(D("0.35"), D("10"), TABLE, []).fee == D("0.04")  # 0.035 -> 0.04


def test_three_way_tie_for_second_splits_ranks_two_to_four():
    table = [D("50"), D("20"), D("15"), D("10"), D("5")]
    split = split_pool(D("100.00"), D("0"), table, standings(1, 2, 2, 2, 5))
    # 2nd, 3rd and 4th pay 20 + 15 + 10 = 45.00, shared by three: 15.00 each; 5th keeps 5th.
    assert split.prizes == {1: D("50.00"), 2: D("15.00"), 3: D("15.00"), 4: D("15.00"), 5: D("5.00")}
    assert split.leftover == D("0.00")


def test_tie_share_rounds_down_and_the_remainder_goes_to_the_platform():
    split = split_pool(D("100.00"), D("0"), TABLE, standings(1, 1, 1))
    assert split.prizes == {1: D("33.33"), 2: D("33.33"), 3: D("33.33")}
    assert split.leftover == D("0.01")


def test_tie_past_the_end_of_the_table_shares_only_the_ranks_that_pay():
    split = split_pool(D("100.00"), D("0"), TABLE, standings(1, 2, 3, 3))
    assert split.prizes == {1: D("70.00"), 2: D("20.00"), 3: D("5.00"), 4: D("5.00")}


def test_fewer_participants_than_prize_ranks():
    split = split_pool(D("30.00"), D("20"), TABLE, standings(1))
    assert split.fee == D("6.00") and split.prizes == {1: D("16.80")}
    assert split.leftover == D("7.20")  # ranks 2 and 3: nobody reached them
    assert split.fee + split.paid + split.leftover == D("30.00")


def test_guaranteed_pool_is_topped_up_by_what_the_prizes_need():
    split = split_pool(D("30.00"), D("20"), TABLE, standings(1, 2, 3), guaranteed=D("500.00"))
    assert split.net_pool == D("500.00")
    assert split.prizes == {1: D("350.00"), 2: D("100.00"), 3: D("50.00")}
    assert split.topup == D("476.00")  # 500 - (30 - 6)
    assert split.leftover == D("0.00")


def test_a_guarantee_the_entries_exceed_changes_nothing():
    assert split_pool(D("1000.00"), D("10"), TABLE, standings(1, 2, 3), guaranteed=D("500.00")).topup == D("0.00")


def test_no_winners_sends_the_net_pool_to_the_platform():
    split = split_pool(D("50.00"), D("10"), TABLE, [], guaranteed=D("100.00"))
    assert split.prizes == {} and split.topup == D("0.00") and split.leftover == D("45.00")


# ---- paid through the ledger ------------------------------------------------------------

def _finish(competition_id: int, equities: dict[int, str], trades: dict[int, int] | None = None) -> None:
    """What the trading engine will have done: equities and trade counts at the end."""
    for participant in participants(competition_id):
        if participant.user_id in equities:
            participant.equity = D(equities[participant.user_id])
            participant.cash = participant.equity
        participant.trades_count = (trades or {}).get(participant.user_id, 1)
    db.session.commit()


def _run_to_settlement(competition_id: int) -> None:
    competition = db.session.get(Competition, competition_id)
    after_end = competition.end_at + timedelta(seconds=1)
    db.session.rollback()
    assert lifecycle.run_overdue(after_end) >= 2


def _pool(competition_id: int) -> Decimal:
    db.session.expire_all()
    return db.session.scalar(select(PlatformAccount.balance).where(
        PlatformAccount.kind == PlatformAccountKind.PRIZE_POOL.value,
        PlatformAccount.reference == f"competition:{competition_id}"))


def _revenue() -> Decimal:
    db.session.expire_all()
    return db.session.scalar(select(PlatformAccount.balance).where(
        PlatformAccount.kind == PlatformAccountKind.PLATFORM_REVENUE.value)) or D("0.00")


def test_settlement_pays_the_rounding_table_and_empties_the_pool(db_app):
    with db_app.app_context():
        # 100.01 in the pool: entries of 33.33 + 33.34 + 33.34
        competition = open_competition(entry_fee="33.33", rebuys_allowed=False)
        users = [trader("200.00") for _ in range(3)]
        service.join_competition(competition.id, users[0])
        competition.entry_fee = D("33.34")  # (terms are locked by now; the test sets the amounts it needs)
        db.session.commit()
        service.join_competition(competition.id, users[1])
        service.join_competition(competition.id, users[2])
        assert _pool(competition.id) == D("100.01")
        _finish(competition.id, {users[0]: "12000.00", users[1]: "11000.00", users[2]: "9000.00"})
        _run_to_settlement(competition.id)

        db.session.expire_all()
        settled = db.session.get(Competition, competition.id)
        assert settled.status == "SETTLED"
        assert (settled.platform_fee_amount, settled.net_pool, settled.prizes_paid, settled.leftover_to_platform) == (
            D("20.00"), D("80.01"), D("80.00"), D("0.01"))
        assert [balance(u) for u in users] == [D("222.67"), D("182.66"), D("174.66")]
        assert _pool(competition.id) == D("0.00")
        assert _revenue() == D("20.01")
        keys = set(db.session.scalars(select(LedgerEntry.idempotency_key).where(LedgerEntry.entry_type == "competition_prize")))
        assert keys == {f"competition-prize:{competition.id}:{u}" for u in users}
        assert [(p.final_rank, p.prize) for p in participants(competition.id)] == [
            (1, D("56.00")), (2, D("16.00")), (3, D("8.00"))]
        # a second settlement pays nothing more
        assert lifecycle.settle_competition(competition.id) is None
        assert lifecycle.run_overdue(settled.end_at + timedelta(hours=1)) == 0
        assert [balance(u) for u in users] == [D("222.67"), D("182.66"), D("174.66")]
        assert_books_balance(db_app)


def test_settlement_with_a_three_way_tie_no_trader_and_a_disqualified_one(db_app):
    with db_app.app_context():
        competition = open_competition(entry_fee="10.00", platform_fee_percent="0",
                                       prize_table={1: "50", 2: "20", 3: "15", 4: "10", 5: "5"})
        users = [trader() for _ in range(7)]
        for user in users:
            service.join_competition(competition.id, user)
        _finish(competition.id,
                {users[0]: "15000", users[1]: "12000", users[2]: "12000", users[3]: "12000", users[4]: "11000",
                 users[5]: "20000", users[6]: "30000"},
                trades={u: 1 for u in users[:5]} | {users[5]: 0, users[6]: 3})
        service.disqualify(competition.id, users[6], "Used two accounts")
        _run_to_settlement(competition.id)
        # pool 70.00: 35.00 / (14.00 + 10.50 + 7.00) / 3 = 10.50 each / 3.50; the no-trade and
        # the disqualified participant (best equities) get nothing and are not ranked.
        got = {p.user_id: (p.final_rank, p.prize) for p in participants(competition.id)}
        assert got[users[0]] == (1, D("35.00"))
        assert got[users[1]] == got[users[2]] == got[users[3]] == (2, D("10.50"))
        assert got[users[4]] == (5, D("3.50"))
        assert got[users[5]] == (None, D("0.00")) and got[users[6]] == (None, D("0.00"))
        assert _pool(competition.id) == D("0.00") and _revenue() == D("0.00")
        assert_books_balance(db_app)


def test_guaranteed_pool_is_topped_up_from_platform_revenue(db_app):
    with db_app.app_context():
        fund_revenue("1000.00")
        competition = open_competition(entry_fee="10.00", guaranteed_pool="500.00")
        users = [trader() for _ in range(2)]
        for user in users:
            service.join_competition(competition.id, user)
        _finish(competition.id, {users[0]: "10500", users[1]: "10100"})
        _run_to_settlement(competition.id)
        # pool 20.00, fee 4.00, net 16.00 raised to 500.00: 350.00 + 100.00 paid, 50.00 (rank 3) never moved
        assert [balance(u) for u in users] == [D("440.00"), D("190.00")]
        assert _revenue() == D("1000.00") + D("4.00") - D("434.00")
        settled = db.session.get(Competition, competition.id)
        assert settled.guarantee_topup == D("434.00") and _pool(competition.id) == D("0.00")
        assert_books_balance(db_app)


def test_a_guarantee_the_platform_cannot_cover_leaves_the_competition_ended_and_retried(app, caplog, monkeypatch):
    """Nothing is paid while platform revenue cannot cover the top-up; the clock retries
    each cycle with one warning a minute (no traceback); the admin's page says what is
    missing; funding revenue with `flask wallet fund-revenue` lets the next cycle pay."""
    monkeypatch.setattr(lifecycle, "_SHORTFALL_WARNED", {})
    with app.app_context():
        competition = open_competition(entry_fee="10.00", guaranteed_pool="500.00")
        user = trader()
        service.join_competition(competition.id, user)
        _finish(competition.id, {user: "10500"})
        end = competition.end_at + timedelta(seconds=1)
        with caplog.at_level("WARNING", logger="edutradex.competitions.lifecycle"):
            lifecycle.run_overdue(end)
            lifecycle.run_lifecycle_cycle(end)
        warnings = [r for r in caplog.records if r.name == "edutradex.competitions.lifecycle"]
        assert [(r.levelname, r.exc_info) for r in warnings] == [("WARNING", None)]  # once a minute, no traceback
        assert "needs 342.00 credits from platform revenue" in warnings[0].getMessage()
        db.session.expire_all()
        assert db.session.get(Competition, competition.id).status == "ENDED"
        assert _pool(competition.id) == D("10.00") and balance(user) == D("90.00")
        # pool 10.00, fee 2.00, net 8.00 raised to 500.00: rank 1's 350.00 needs 342.00; revenue can give the fee
        assert lifecycle.guarantee_shortfall(competition.id) == (D("342.00"), D("2.00"))
        assert_books_balance(app)
        funded = app.test_cli_runner().invoke(args=["wallet", "fund-revenue", "340.00", "--reason", "Spring cup"])
        assert funded.exit_code == 0 and "Platform revenue now holds 340.00 credits." in funded.output
        assert lifecycle.guarantee_shortfall(competition.id) is None
        assert lifecycle.run_overdue(end) == 1
        db.session.expire_all()
        assert db.session.get(Competition, competition.id).status == "SETTLED" and balance(user) == D("440.00")
        assert _revenue() == D("0.00")  # 340.00 funded + 2.00 fee - 342.00 top-up
        assert_books_balance(app)


@pytest.mark.parametrize("amount, reason, says", [
    ("-5", "Spring cup", "Amount"), ("0", "Spring cup", "Amount"), ("NaN", "Spring cup", "Amount"),
    ("abc", "Spring cup", "Amount"), ("10.001", "Spring cup", "Amount"), ("1000000.01", "Spring cup", "Amount"),
    ("1e3", "Spring cup", "Amount"), ("50.00", "  ", "reason"), ("50.00", "x" * 501, "reason"),
])
def test_fund_revenue_refuses_bad_input_and_changes_nothing(app, amount, reason, says):
    with app.app_context():
        entries = db.session.scalar(select(func.count()).select_from(LedgerEntry))
        result = app.test_cli_runner().invoke(args=["wallet", "fund-revenue", "--reason", reason, "--", amount])
        assert result.exit_code == 2 and "Refused:" in result.output and says in result.output, result.output
        assert db.session.scalar(select(func.count()).select_from(LedgerEntry)) == entries and _revenue() == D("0.00")


def test_fund_revenue_needs_a_reason(app):
    result = app.test_cli_runner().invoke(args=["wallet", "fund-revenue", "50.00"])
    assert result.exit_code == 2 and "--reason" in result.output
