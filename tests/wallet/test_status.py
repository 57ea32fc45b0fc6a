"""Status changes are conditional updates on every database: a cancel racing an approve,
two admins deciding the same KYC, a webhook racing a job — exactly one wins, and the books
balance. SQLite ignores SELECT ... FOR UPDATE, so a read-then-write would let both win."""

from __future__ import annotations

from decimal import Decimal
from functools import partial

import pytest

from edutradex.errors import Conflict
from edutradex.extensions import db
from edutradex.wallet import deposits, kyc, withdrawals
from edutradex.wallet.models import Deposit, KycSubmission, LedgerEntry, Withdrawal
from edutradex.wallet.service import adjust_credits
from tests.factories import make_admin, make_user
from tests.support.concurrency import run_in_threads
from tests.wallet.helpers import assert_books_balance, balance, verified_user_with_bank

ROUNDS = 200


def race(app, *actions) -> list[str]:
    """Run the actions at the same instant, one thread each: "won" or "lost" (Conflict) each."""

    def attempt(i: int) -> str:
        try:
            actions[i]()
            return "won"
        except Conflict:
            return "lost"

    return run_in_threads(app, len(actions), attempt)


def test_cancel_racing_approve_has_exactly_one_winner(db_app):
    with db_app.app_context():
        admin, user = make_admin(), make_user()
        for _ in range(4):  # enough for every round's approve to win
            adjust_credits(user.id, Decimal("500.00"), "Test funds", admin.id)
        verified_user_with_bank(user.id, admin.id)
        admin_id, user_id = admin.id, user.id
    winners = {"approve": 0, "cancel": 0}
    for _ in range(ROUNDS):
        with db_app.app_context():
            withdrawal_id = withdrawals.request_withdrawal(user_id, Decimal("10.00")).id
        outcomes = race(db_app, partial(withdrawals.cancel_withdrawal, user_id, withdrawal_id),
                        partial(withdrawals.approve_withdrawal, withdrawal_id, admin_id))
        assert sorted(outcomes) == ["lost", "won"], outcomes
        with db_app.app_context():
            status = db.session.get(Withdrawal, withdrawal_id).status
            if outcomes[0] == "won":
                winners["cancel"] += 1
                assert status == "canceled"
            else:
                winners["approve"] += 1
                assert status in ("approved", "processing", "paid")
    with db_app.app_context():
        reversals = db.session.scalar(db.select(db.func.count()).select_from(LedgerEntry)
                                      .where(LedgerEntry.entry_type == "withdrawal_reversal"))
        assert reversals == 2 * winners["cancel"]  # two legs per cancelled withdrawal, none for approved ones
        assert balance(user_id) == Decimal("2000.00") - 10 * winners["approve"]
    assert_books_balance(db_app)


def test_two_admins_deciding_one_kyc_submission_decide_it_once(db_app):
    with db_app.app_context():
        first, second = make_admin(), make_admin()
        first_id, second_id = first.id, second.id
        users = [make_user().id for _ in range(40)]
    for user_id in users:
        with db_app.app_context():
            submission_id = kyc.submit_kyc(user_id, "Ann Lee", "1990-01-01", "FR", "1 rue de Rivoli, Paris",
                                           "AB1234567").id
        outcomes = race(db_app, partial(kyc.approve_kyc, submission_id, first_id),
                        partial(kyc.reject_kyc, submission_id, second_id, "Blurry document"))
        assert sorted(outcomes) == ["lost", "won"], outcomes
        with db_app.app_context():
            decided = db.session.get(KycSubmission, submission_id)
            assert (decided.status, decided.reviewed_by) == (
                ("approved", first_id) if outcomes[0] == "won" else ("rejected", second_id))


def webhook(handler, intent) -> None:
    handler(intent)
    db.session.commit()


def test_a_deposit_completed_and_failed_at_once_is_one_or_the_other(db_app):
    """payment_intent.succeeded and a decline racing (the ledger key alone would not stop a
    completed deposit from being marked failed afterwards)."""
    with db_app.app_context():
        user_id = make_user().id
    for _ in range(40):
        with db_app.app_context():
            deposit = Deposit(user_id=user_id, amount=Decimal("5.00"), provider="stripe", status="processing")
            db.session.add(deposit)
            db.session.commit()
            deposit_id, ref = deposit.id, f"pi_{deposit.id}"
            deposit.provider_ref = ref
            db.session.commit()

        intent = {"id": ref, "currency": "eur", "amount": 500, "metadata": {}}
        race(db_app, partial(webhook, deposits.intent_succeeded, intent),
             partial(webhook, deposits.intent_failed, {**intent, "last_payment_error": {"message": "Declined"}}))
        with db_app.app_context():
            status = db.session.get(Deposit, deposit_id).status
            credited = db.session.scalar(db.select(db.func.count()).select_from(LedgerEntry)
                                         .where(LedgerEntry.reference == f"deposit:{deposit_id}"))
            assert (status, credited) in (("completed", 1), ("failed", 0))
    assert_books_balance(db_app)


@pytest.mark.parametrize("verb", ["cancel", "reject"])
def test_a_decided_withdrawal_says_what_it_already_is(db_app, verb):
    with db_app.app_context():
        admin, user = make_admin(), make_user()
        adjust_credits(user.id, Decimal("50.00"), "Test funds", admin.id)
        verified_user_with_bank(user.id, admin.id)
        withdrawal = withdrawals.request_withdrawal(user.id, Decimal("20.00"))
        withdrawals.approve_withdrawal(withdrawal.id, admin.id)
        with pytest.raises(Conflict, match="already (approved|paid|processing)"):
            if verb == "cancel":
                withdrawals.cancel_withdrawal(user.id, withdrawal.id)
            else:
                withdrawals.reject_withdrawal(withdrawal.id, admin.id, "Too late")
