"""post_ledger_entries: many credits from one platform account, written exactly as one
post_ledger_entry after the other would write them (set-based on PostgreSQL)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from edutradex.errors import Conflict
from edutradex.extensions import db
from edutradex.wallet.ledger import (
    InsufficientFunds,
    platform_account,
    post_ledger_entries,
    post_ledger_entry,
    wallet_account,
    wallet_accounts,
)
from edutradex.wallet.models import EntryType, LedgerEntry, PlatformAccount, PlatformAccountKind, Wallet
from tests.factories import make_user
from tests.wallet.helpers import assert_books_balance

D = Decimal


def fill_pool(reference: str, amount: str) -> None:
    post_ledger_entry(EntryType.ADJUSTMENT, D(amount), debit=None,
                      credit=platform_account(PlatformAccountKind.PRIZE_POOL, reference),
                      idempotency_key=f"fill:{reference}", reference=reference, reason="test")


def ledger_rows(reference: str) -> list[tuple]:
    """The entries of a pool's movements, without ids/accounts (which differ between runs)."""
    return [(e.leg, e.amount, e.balance_before, e.balance_after, e.entry_type, e.idempotency_key.split(":")[-1])
            for e in db.session.scalars(select(LedgerEntry).where(LedgerEntry.reference == reference,
                                                                  LedgerEntry.entry_type != "adjustment")
                                        .order_by(LedgerEntry.id))]


def test_a_batch_writes_what_one_posting_after_the_other_writes(db_app):
    with db_app.app_context():
        users = [make_user().id for _ in range(5)]
        for n, user in enumerate(users):  # wallets with history, so the chains continue
            post_ledger_entry(EntryType.ADJUSTMENT, D(n + 1), debit=None, credit=wallet_account(user),
                              idempotency_key=f"seed:{user}", reference="seed", reason="seed")
        fill_pool("batch", "100.00")
        fill_pool("single", "100.00")
        prizes = [D("40.00"), D("20.00"), D("10.01"), D("0.01"), D("5.00")]
        pool_batch = platform_account(PlatformAccountKind.PRIZE_POOL, "batch")
        pool_single = platform_account(PlatformAccountKind.PRIZE_POOL, "single")
        wallets = wallet_accounts(users)
        assert post_ledger_entries(EntryType.COMPETITION_PRIZE, pool_batch,
                                   [(wallets[u], p, f"prize:batch:{u}") for u, p in zip(users, prizes, strict=True)],
                                   reference="batch") == 5
        after_batch = {u: db.session.scalar(select(Wallet.balance).where(Wallet.user_id == u)) for u in users}
        for user, prize in zip(users, prizes, strict=True):
            post_ledger_entry(EntryType.COMPETITION_PRIZE, prize, debit=pool_single, credit=wallets[user],
                              idempotency_key=f"prize:single:{user}", reference="single")
        db.session.commit()
        assert ledger_rows("single")[0::2] == ledger_rows("batch")[0::2]  # the pool's legs, chained alike
        batch_credits = [row[:2] for row in ledger_rows("batch")[1::2]]
        assert batch_credits == [row[:2] for row in ledger_rows("single")[1::2]]
        for user, prize in zip(users, prizes, strict=True):
            wallet = db.session.scalar(select(Wallet).where(Wallet.user_id == user))
            assert wallet.balance == after_batch[user] + prize
            assert wallet.total_won_competitions == 2 * prize and wallet.withdrawable_balance == wallet.balance
        pools = dict(db.session.execute(select(PlatformAccount.reference, PlatformAccount.balance)
                                        .where(PlatformAccount.kind == "prize_pool")).all())
        assert pools == {"batch": D("24.98"), "single": D("24.98")}
    assert_books_balance(db_app)


def test_a_batch_that_cannot_be_made_changes_nothing(db_app):
    with db_app.app_context():
        users = [make_user().id for _ in range(3)]
        fill_pool("small", "10.00")
        db.session.commit()
        pool = platform_account(PlatformAccountKind.PRIZE_POOL, "small")
        wallets = wallet_accounts(users)
        post_ledger_entry(EntryType.COMPETITION_PRIZE, D("1.00"), debit=pool, credit=wallets[users[0]],
                          idempotency_key="prize:taken", reference="small")
        db.session.commit()
        with pytest.raises(InsufficientFunds):
            post_ledger_entries(EntryType.COMPETITION_PRIZE, pool,
                                [(wallets[u], D("5.00"), f"prize:big:{u}") for u in users], reference="small")
        db.session.rollback()
        with pytest.raises(Conflict):
            post_ledger_entries(EntryType.COMPETITION_PRIZE, pool,
                                [(wallets[users[1]], D("1.00"), "prize:new"), (wallets[users[2]], D("1.00"), "prize:taken")],
                                reference="small")
        db.session.rollback()
        with pytest.raises(ValueError, match="distinct wallets"):
            post_ledger_entries(EntryType.COMPETITION_PRIZE, pool,
                                [(wallets[users[1]], D("1.00"), "a"), (wallets[users[1]], D("1.00"), "b")],
                                reference="small")
        db.session.rollback()
        assert [db.session.scalar(select(Wallet.balance).where(Wallet.user_id == u)) for u in users] == [
            D("1.00"), D("0.00"), D("0.00")]
        assert db.session.scalar(select(PlatformAccount.balance).where(PlatformAccount.reference == "small")) == D("9.00")
    assert_books_balance(db_app)


def test_wallet_accounts_creates_the_wallets_that_are_missing(db_app):
    from sqlalchemy import insert

    from edutradex.auth.models import User

    with db_app.app_context():
        with_wallet = make_user().id
        db.session.execute(insert(User), [{"email": "nowallet@example.com", "name": "No Wallet", "password_hash": "x",
                                           "role": "USER", "active": True, "demo_balance": D("0.00"),
                                           "session_nonce": "0" * 16}])
        without = db.session.scalar(select(User.id).where(User.email == "nowallet@example.com"))
        assert db.session.scalar(select(Wallet.id).where(Wallet.user_id == without)) is None
        accounts = wallet_accounts([with_wallet, without])
        db.session.commit()
        wallets = dict(db.session.execute(select(Wallet.user_id, Wallet.id)).all())
        assert accounts == {with_wallet: wallet_account(with_wallet), without: wallet_account(without)}
        assert accounts[without].wallet_id == wallets[without]
        assert db.session.get(Wallet, wallets[without]).balance == D("0.00")
