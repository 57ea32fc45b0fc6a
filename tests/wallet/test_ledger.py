from decimal import Decimal

import pytest

from edutradex.errors import Conflict, DomainError
from edutradex.extensions import db
from edutradex.wallet import deposits, service
from edutradex.wallet.ledger import (
    InsufficientFunds,
    get_or_create_wallet,
    platform_account,
    post_ledger_entry,
    wallet_account,
)
from edutradex.wallet.models import EntryType, LedgerEntry, PlatformAccountKind, Wallet
from edutradex.wallet.verify import verify_ledger
from tests.factories import make_admin, make_user
from tests.wallet.helpers import assert_books_balance, balance


def deposit(user_id, amount, key=None):
    """A demo-provider deposit: the deposits row and its ledger entry."""
    made = deposits.start_deposit(user_id, Decimal(amount))
    return list(db.session.scalars(db.select(LedgerEntry).where(LedgerEntry.idempotency_key == f"deposit:{made.id}")))


def adjust(user_id, amount, key):
    entries = post_ledger_entry(EntryType.ADJUSTMENT, Decimal(amount), debit=None, credit=wallet_account(user_id),
                                idempotency_key=key, reference="test", reason="test")
    db.session.commit()
    return entries


def test_a_wallet_is_created_with_the_account(db_app):
    with db_app.app_context():
        user = make_user()
        wallet = db.session.scalar(db.select(Wallet).where(Wallet.user_id == user.id))
        assert wallet is not None and wallet.balance == Decimal("0.00")
        assert wallet.total_deposited == Decimal("0.00")


def test_a_wallet_is_created_lazily_for_an_older_account(db_app):
    with db_app.app_context():
        user = make_user()
        db.session.execute(db.delete(Wallet).where(Wallet.user_id == user.id))
        db.session.commit()
        assert service.get_wallet(user.id).balance == Decimal("0.00")
        assert db.session.scalar(db.select(db.func.count()).select_from(Wallet).where(Wallet.user_id == user.id)) == 1


def test_a_credit_records_balance_before_and_after_and_totals(db_app):
    with db_app.app_context():
        user = make_user()
        deposit(user.id, "50.00", "deposit:a")
        [entry] = deposit(user.id, "25.50", "deposit:b")
        assert (entry.balance_before, entry.amount, entry.balance_after) == (Decimal("50.00"), Decimal("25.50"), Decimal("75.50"))
        assert entry.counterparty == "external" and entry.leg == "credit"
        wallet = db.session.scalar(db.select(Wallet).where(Wallet.user_id == user.id))
        assert wallet.balance == Decimal("75.50") and wallet.total_deposited == Decimal("75.50")
    assert_books_balance(db_app)


def test_a_replayed_idempotency_key_returns_the_entry_and_changes_nothing(db_app):
    with db_app.app_context():
        user = make_user()
        [first] = adjust(user.id, "10.00", "adjustment:once")
        [again] = adjust(user.id, "10.00", "adjustment:once")
        assert again.id == first.id
        assert balance(user.id) == Decimal("10.00")
        assert db.session.scalar(db.select(db.func.count()).select_from(LedgerEntry)) == 1
        with pytest.raises(Conflict):
            adjust(user.id, "99.00", "adjustment:once")  # the same key for a different movement
        assert balance(user.id) == Decimal("10.00")
    assert_books_balance(db_app)


def test_a_debit_never_overdraws_and_leaves_nothing_behind(db_app):
    with db_app.app_context():
        user = make_user()
        deposit(user.id, "10.00", "deposit:x")
        with pytest.raises(InsufficientFunds):
            post_ledger_entry(EntryType.COMPETITION_ENTRY, Decimal("10.01"), debit=wallet_account(user.id),
                              credit=platform_account(PlatformAccountKind.PRIZE_POOL, "competition:1"),
                              idempotency_key="entry:1", reference="competition:1")
        db.session.commit()
        assert balance(user.id) == Decimal("10.00")
        assert db.session.scalar(db.select(db.func.count()).select_from(LedgerEntry)) == 1
    assert_books_balance(db_app)


def test_internal_transfers_have_two_legs_and_keep_the_platform_sum(db_app):
    """Competition money (the competitions feature calls exactly this): entry fee into the
    prize pool, the platform's fee out of it, a prize and a refund back to wallets."""
    with db_app.app_context():
        alice, bob = make_user(), make_user()
        deposit(alice.id, "30.00", "deposit:alice")
        deposit(bob.id, "30.00", "deposit:bob")
        pool = platform_account(PlatformAccountKind.PRIZE_POOL, "competition:7")
        for user in (alice, bob):
            legs = post_ledger_entry(EntryType.COMPETITION_ENTRY, Decimal("10.00"), debit=wallet_account(user.id),
                                     credit=pool, idempotency_key=f"competition:7:entry:{user.id}", reference="competition:7")
            assert [leg.leg for leg in legs] == ["debit", "credit"] or [leg.leg for leg in legs] == ["credit", "debit"]
            assert sum(leg.amount for leg in legs) == 0
        post_ledger_entry(EntryType.PLATFORM_FEE, Decimal("4.00"), debit=pool,
                          credit=platform_account(PlatformAccountKind.PLATFORM_REVENUE),
                          idempotency_key="competition:7:fee", reference="competition:7")
        post_ledger_entry(EntryType.COMPETITION_PRIZE, Decimal("16.00"), debit=pool, credit=wallet_account(alice.id),
                          idempotency_key="competition:7:prize:1", reference="competition:7")
        db.session.commit()
        wallet = service.get_wallet(alice.id)
        assert wallet.balance == Decimal("36.00")
        assert wallet.total_spent_competitions == Decimal("10.00") and wallet.total_won_competitions == Decimal("16.00")
        assert verify_ledger() == []
        with pytest.raises(InsufficientFunds):  # the pool is empty now
            post_ledger_entry(EntryType.COMPETITION_REFUND, Decimal("0.01"), debit=pool, credit=wallet_account(bob.id),
                              idempotency_key="competition:7:refund:bob", reference="competition:7")
    assert_books_balance(db_app)


def withdrawable(user_id) -> Decimal:
    db.session.expire_all()
    return get_or_create_wallet(user_id).withdrawable_balance


def test_demo_credits_are_spent_first_and_never_become_withdrawable(db_app):
    with db_app.app_context():
        user = make_user()
        deposit(user.id, "50.00")  # the demo provider
        assert (balance(user.id), withdrawable(user.id)) == (Decimal("50.00"), Decimal("0.00"))
        adjust(user.id, "30.00", "adjustment:paid")
        assert (balance(user.id), withdrawable(user.id)) == (Decimal("80.00"), Decimal("30.00"))
        # A withdrawal takes only withdrawable credits, whatever the balance.
        pending = platform_account(PlatformAccountKind.PENDING_WITHDRAWALS)
        with pytest.raises(InsufficientFunds):
            post_ledger_entry(EntryType.WITHDRAWAL, Decimal("30.01"), debit=wallet_account(user.id), credit=pending,
                              idempotency_key="withdrawal:too-much", reference="withdrawal:x")
        assert (balance(user.id), withdrawable(user.id)) == (Decimal("80.00"), Decimal("30.00"))
        # Spending takes the 50 demo credits first, then 10 withdrawable ones.
        post_ledger_entry(EntryType.COMPETITION_ENTRY, Decimal("60.00"), debit=wallet_account(user.id),
                          credit=platform_account(PlatformAccountKind.PRIZE_POOL, "competition:3"),
                          idempotency_key="competition:3:entry", reference="competition:3")
        db.session.commit()
        assert (balance(user.id), withdrawable(user.id)) == (Decimal("20.00"), Decimal("20.00"))
        post_ledger_entry(EntryType.WITHDRAWAL, Decimal("20.00"), debit=wallet_account(user.id), credit=pending,
                          idempotency_key="withdrawal:all", reference="withdrawal:y")
        post_ledger_entry(EntryType.WITHDRAWAL_REVERSAL, Decimal("20.00"), debit=pending, credit=wallet_account(user.id),
                          idempotency_key="withdrawal:all:reversal", reference="withdrawal:y")
        db.session.commit()
        assert (balance(user.id), withdrawable(user.id)) == (Decimal("20.00"), Decimal("20.00"))
    assert_books_balance(db_app)


def test_an_undone_leg_restores_the_withdrawable_part(db_app):
    with db_app.app_context():
        user = make_user()
        deposit(user.id, "50.00")
        adjust(user.id, "10.00", "adjustment:paid")
        # The wallet's credit leg is applied first, then the empty pool's debit fails: undone.
        with pytest.raises(InsufficientFunds):
            post_ledger_entry(EntryType.COMPETITION_REFUND, Decimal("5.00"),
                              debit=platform_account(PlatformAccountKind.PRIZE_POOL, "competition:4"),
                              credit=wallet_account(user.id), idempotency_key="competition:4:refund", reference="c:4")
        db.session.rollback()
        assert (balance(user.id), withdrawable(user.id)) == (Decimal("60.00"), Decimal("10.00"))
    assert_books_balance(db_app)


@pytest.mark.parametrize("amount", [Decimal("0"), Decimal("-5"), Decimal("1.001"), Decimal("NaN")])
def test_the_ledger_refuses_bad_amounts(db_app, amount):
    with db_app.app_context():
        user = make_user()
        with pytest.raises(DomainError):
            adjust(user.id, amount, "adjustment:bad")
        with pytest.raises(TypeError):
            post_ledger_entry(EntryType.DEPOSIT, 1.5, debit=None, credit=wallet_account(user.id),
                              idempotency_key="deposit:float", reference="x")


def test_admin_adjustment_needs_a_reason_and_records_the_admin(db_app):
    with db_app.app_context():
        admin, user = make_admin(), make_user()
        with pytest.raises(DomainError, match="reason"):
            service.adjust_credits(user.id, Decimal("5"), "  ", admin.id)
        entry = service.adjust_credits(user.id, Decimal("5.00"), "Goodwill after outage", admin.id)
        assert (entry.actor_id, entry.reason, entry.amount) == (admin.id, "Goodwill after outage", Decimal("5.00"))
        debit = service.adjust_credits(user.id, Decimal("-2.50"), "Correction", admin.id)
        assert debit.amount == Decimal("-2.50") and balance(user.id) == Decimal("2.50")
        with pytest.raises(InsufficientFunds):
            service.adjust_credits(user.id, Decimal("-3"), "Too much", admin.id)
        assert balance(user.id) == Decimal("2.50")
    assert_books_balance(db_app)


def test_verify_reports_a_tampered_balance_and_exits_non_zero(db_app):
    with db_app.app_context():
        user = make_user()
        deposit(user.id, "10.00")
        db.session.execute(db.update(Wallet).where(Wallet.user_id == user.id).values(balance=Decimal("11.00")))
        db.session.commit()
    result = db_app.test_cli_runner().invoke(args=["wallet", "verify"])
    assert result.exit_code == 1
    assert "balance 11.00 != entries 10.00" in result.output
    assert "platform: accounts hold 11.00" in result.output
