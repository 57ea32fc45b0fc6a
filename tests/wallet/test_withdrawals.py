"""Withdrawals: KYC-gated, debited at once into pending withdrawals, paid by the payout
job, given back by a reversal when rejected or when the payout fails."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from edutradex.errors import Conflict, Forbidden, NotFound
from edutradex.extensions import db
from edutradex.types import utcnow
from edutradex.wallet import kyc, withdrawals
from edutradex.wallet.ledger import InsufficientFunds
from edutradex.wallet.models import LedgerEntry, Withdrawal
from edutradex.wallet.providers import PayoutResult
from edutradex.wallet.service import adjust_credits, set_withdrawals_enabled
from tests.factories import make_admin, make_user
from tests.support.smtp import text_body
from tests.wallet.helpers import GOOD_IBAN, FlakyBank, assert_books_balance, balance, verified_user_with_bank


def funded_verified_user(amount="100.00"):
    admin, user = make_admin(), make_user()
    adjust_credits(user.id, Decimal(amount), "Test funds", admin.id)  # demo deposits are never withdrawable
    verified_user_with_bank(user.id, admin.id)
    return admin, user


def entry_types():
    """Every ledger leg's type, oldest first (wallet and platform legs)."""
    return [e.entry_type for e in db.session.scalars(db.select(LedgerEntry).order_by(LedgerEntry.id))]


def test_withdrawal_needs_kyc_enabled_account_and_bank_details(db_app):
    with db_app.app_context():
        admin, user = make_admin(), make_user()
        adjust_credits(user.id, Decimal("50"), "Test funds", admin.id)
        with pytest.raises(Forbidden, match="Verify your identity"):
            withdrawals.request_withdrawal(user.id, Decimal("20"))
        submission = kyc.submit_kyc(user.id, "Ann Lee", "1990-01-01", "FR", "1 rue de Rivoli, Paris", "AB1234567")
        with pytest.raises(Forbidden, match="Verify your identity"):  # still pending
            withdrawals.request_withdrawal(user.id, Decimal("20"))
        kyc.approve_kyc(submission.id, admin.id)
        with pytest.raises(Forbidden, match="bank account"):
            withdrawals.request_withdrawal(user.id, Decimal("20"))
        withdrawals.save_bank_account(user.id, GOOD_IBAN, "Ann Lee")
        set_withdrawals_enabled(user.id, False)
        with pytest.raises(Forbidden, match="disabled"):
            withdrawals.request_withdrawal(user.id, Decimal("20"))
        set_withdrawals_enabled(user.id, True)
        with pytest.raises(InsufficientFunds):
            withdrawals.request_withdrawal(user.id, Decimal("50.01"))
        assert db.session.scalar(db.select(db.func.count()).select_from(Withdrawal)) == 0
        withdrawal = withdrawals.request_withdrawal(user.id, Decimal("50.00"))
        assert withdrawal.status == "requested" and balance(user.id) == Decimal("0.00")
    assert_books_balance(db_app)


def test_an_approved_withdrawal_waits_for_its_bank_transfer(mail_app, smtp_server):
    """Approving pays nothing by itself: no payout entry and no "paid" email until a SEPA
    batch holding it is marked sent (tests/wallet/test_batches.py)."""
    with mail_app.app_context():
        admin, user = funded_verified_user("100.00")
        withdrawal = withdrawals.request_withdrawal(user.id, Decimal("40.00"))
        assert balance(user.id) == Decimal("60.00")
        withdrawals.approve_withdrawal(withdrawal.id, admin.id)
        db.session.expire_all()
        approved = db.session.get(Withdrawal, withdrawal.id)
        assert (approved.status, approved.provider, approved.decided_by) == ("approved", None, admin.id)
        assert [t for t in entry_types() if t != "adjustment"] == ["withdrawal", "withdrawal"]
        assert withdrawals.run_payout(withdrawal.id) == "approved"  # no payout provider: the job pays nothing
        subjects = [s.removeprefix("[EduTradeX] ") for s in smtp_server.subjects()]
        assert subjects == ["Identity verified", "Withdrawal requested"]
        assert all(m["To"] == user.email for m in smtp_server.messages)
        body = text_body(smtp_server.messages[1])
        assert "DE89 **** **** **** 3000" in body and GOOD_IBAN not in body
    assert_books_balance(mail_app)


class RejectingBank:
    """A payout partner that refuses the transfer (the provider interface, not a mock of Stripe)."""

    name = "rejecting-bank"

    def create_payout(self, withdrawal_id, amount, currency, user_id):
        return PayoutResult(reference="", status="failed", failure_message="Account closed at the receiving bank.")


def test_a_payout_provider_that_refuses_reverses_once_and_the_user_is_told(mail_app, smtp_server):
    """The provider seam (e.g. Stripe Connect later): approved withdrawals go to it through the payout job."""
    mail_app.extensions["wallet_payout_provider"] = RejectingBank()
    with mail_app.app_context():
        admin, user = funded_verified_user("100.00")
        withdrawal = withdrawals.request_withdrawal(user.id, Decimal("70.00"))
        withdrawals.approve_withdrawal(withdrawal.id, admin.id)
        db.session.expire_all()
        failed = db.session.get(Withdrawal, withdrawal.id)
        assert failed.status == "failed" and failed.failure_reason == "Account closed at the receiving bank."
        assert balance(user.id) == Decimal("100.00")
        withdrawals.run_payout(withdrawal.id)  # retried job
        with pytest.raises(Conflict):
            withdrawals.approve_withdrawal(withdrawal.id, admin.id)
        assert balance(user.id) == Decimal("100.00")
        assert entry_types().count("withdrawal_reversal") == 2  # wallet leg + pending leg, once
        assert withdrawals.get_or_create_wallet(user.id).total_withdrawn == Decimal("0.00")
        subjects = [s.removeprefix("[EduTradeX] ") for s in smtp_server.subjects()]
        assert subjects[-2:] == ["Withdrawal requested", "Withdrawal failed"]
        assert "Account closed at the receiving bank." in text_body(smtp_server.messages[-1])
    assert_books_balance(mail_app)


def test_reject_and_cancel_give_the_credits_back(db_app):
    with db_app.app_context():
        admin, user = funded_verified_user("100.00")
        first = withdrawals.request_withdrawal(user.id, Decimal("30.00"))
        second = withdrawals.request_withdrawal(user.id, Decimal("20.00"))
        assert balance(user.id) == Decimal("50.00")
        with pytest.raises(Exception, match="reason"):
            withdrawals.reject_withdrawal(first.id, admin.id, " ")
        withdrawals.reject_withdrawal(first.id, admin.id, "Name does not match the bank account")
        other = make_user()
        with pytest.raises(NotFound):
            withdrawals.cancel_withdrawal(other.id, second.id)
        withdrawals.cancel_withdrawal(user.id, second.id)
        with pytest.raises(Conflict):
            withdrawals.cancel_withdrawal(user.id, second.id)
        assert balance(user.id) == Decimal("100.00")
        assert [w.status for w in withdrawals.user_withdrawals(user.id)] == ["canceled", "rejected"]
    assert_books_balance(db_app)


def test_stripe_mode_never_pays_the_platforms_own_bank(stripe_app, localstripe):
    """Stripe's payouts.create moves the platform's Stripe balance to the platform's own bank
    account, not to the user: approving a withdrawal in Stripe mode creates no Stripe payout."""
    with stripe_app.app_context():
        admin, user = make_admin(), make_user()
        adjust_credits(user.id, Decimal("80.00"), "Test funds", admin.id)
        verified_user_with_bank(user.id, admin.id)
        withdrawal = withdrawals.request_withdrawal(user.id, Decimal("50.00"))
        withdrawals.approve_withdrawal(withdrawal.id, admin.id)
        db.session.expire_all()
        approved = db.session.get(Withdrawal, withdrawal.id)
        assert (approved.status, approved.provider, approved.provider_ref) == ("approved", None, None)
        mine = [p for p in localstripe.client().v1.payouts.list().data
                if (p.metadata or {}).get("withdrawal_id") == str(withdrawal.id)]
        assert mine == []
        assert balance(user.id) == Decimal("30.00")
    assert_books_balance(stripe_app)


def test_a_provider_that_is_down_is_retried_with_backoff_until_it_pays(mail_app, smtp_server):
    """Every approved withdrawal ends paid or failed: an unreachable provider leaves it
    approved with its next attempt scheduled, and the reconciler retries it when due."""
    assert withdrawals.payout_reconciler in mail_app.extensions["background_services"]  # runs in the feed process
    bank = FlakyBank(outages=2)
    mail_app.extensions["wallet_payout_provider"] = bank
    with mail_app.app_context():
        admin, user = funded_verified_user("100.00")
        withdrawal = withdrawals.request_withdrawal(user.id, Decimal("40.00"))
        approved_at = utcnow()
        withdrawals.approve_withdrawal(withdrawal.id, admin.id)  # the job runs at once in tests: the bank is down
        db.session.expire_all()
        first = db.session.get(Withdrawal, withdrawal.id)
        assert (first.status, first.payout_attempts, first.last_error) == ("approved", 1, "flaky-bank: connection refused")
        assert timedelta(seconds=299) < first.next_attempt_at - approved_at < timedelta(seconds=310)

        assert withdrawals.reconcile_payouts(approved_at + timedelta(seconds=60)) == 0  # not due yet
        assert withdrawals.reconcile_payouts(approved_at + timedelta(seconds=310)) == 1  # down again
        db.session.expire_all()
        second = db.session.get(Withdrawal, withdrawal.id)
        assert (second.status, second.payout_attempts) == ("approved", 2)
        assert second.next_attempt_at - approved_at > timedelta(seconds=900)  # backing off

        assert withdrawals.reconcile_payouts(approved_at + timedelta(hours=1)) == 1
        db.session.expire_all()
        paid = db.session.get(Withdrawal, withdrawal.id)
        assert (paid.status, paid.provider, paid.provider_ref, paid.next_attempt_at) == ("paid", "flaky-bank", f"fb-{withdrawal.id}", None)
        assert bank.calls == [withdrawal.id] * 3
        assert withdrawals.reconcile_payouts(approved_at + timedelta(days=1)) == 0  # nothing left to do
        withdrawals.run_payout(withdrawal.id)  # a stray job pays nothing twice
        assert bank.calls == [withdrawal.id] * 3
        assert entry_types().count("payout") == 1 and balance(user.id) == Decimal("60.00")
        assert [s for s in smtp_server.subjects() if "paid" in s] == ["[EduTradeX] Withdrawal paid"]
    assert_books_balance(mail_app)


def test_an_approved_withdrawal_with_a_dead_provider_can_be_failed_and_reversed(db_app):
    db_app.extensions["wallet_payout_provider"] = FlakyBank(outages=99)
    with db_app.app_context():
        admin, user = funded_verified_user("100.00")
        withdrawal = withdrawals.request_withdrawal(user.id, Decimal("40.00"))
        withdrawals.approve_withdrawal(withdrawal.id, admin.id)
        withdrawals.retry_payout(withdrawal.id)  # the admin's "retry now": still down
        db.session.expire_all()
        assert db.session.get(Withdrawal, withdrawal.id).payout_attempts == 2
        withdrawals.fail_and_reverse(withdrawal.id, admin.id, "The payout partner closed the account")
        assert balance(user.id) == Decimal("100.00")
        with pytest.raises(Conflict):
            withdrawals.fail_and_reverse(withdrawal.id, admin.id, "again")
        with pytest.raises(Conflict):
            withdrawals.retry_payout(withdrawal.id)
        assert withdrawals.run_payout(withdrawal.id) == "failed"  # a late job changes nothing
        assert entry_types().count("withdrawal_reversal") == 2
    assert_books_balance(db_app)


def test_a_payout_the_provider_has_not_decided_yet_is_checked_until_it_ends(db_app):
    bank = FlakyBank(settles_later=True, undecided=1)
    db_app.extensions["wallet_payout_provider"] = bank
    with db_app.app_context():
        admin, user = funded_verified_user("100.00")
        withdrawal = withdrawals.request_withdrawal(user.id, Decimal("40.00"))
        approved_at = utcnow()
        withdrawals.approve_withdrawal(withdrawal.id, admin.id)
        db.session.expire_all()
        accepted = db.session.get(Withdrawal, withdrawal.id)
        assert (accepted.status, accepted.provider_ref) == ("processing", f"fb-{withdrawal.id}")
        assert accepted.next_attempt_at is not None  # the reconciler asks again
        assert withdrawals.reconcile_payouts(approved_at + timedelta(seconds=310)) == 1  # still pending
        assert withdrawals.reconcile_payouts(approved_at + timedelta(hours=1)) == 1  # paid now
        db.session.expire_all()
        assert db.session.get(Withdrawal, withdrawal.id).status == "paid"
        assert (bank.calls, bank.status_checks) == ([withdrawal.id], [withdrawal.id] * 2)
        assert withdrawals.reconcile_payouts(approved_at + timedelta(days=1)) == 0
        assert entry_types().count("payout") == 1
    assert_books_balance(db_app)
