"""Withdrawals: KYC-gated, debited at once into pending withdrawals, paid by the payout
job, given back by a reversal when rejected or when the payout fails."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import requests

from edutradex.errors import Conflict, Forbidden, NotFound
from edutradex.extensions import db
from edutradex.wallet import kyc, withdrawals
from edutradex.wallet.ledger import InsufficientFunds
from edutradex.wallet.models import EntryType, LedgerEntry, Withdrawal
from edutradex.wallet.providers import PayoutResult
from edutradex.wallet.service import adjust_credits, set_withdrawals_enabled
from tests.factories import make_admin, make_user
from tests.wallet.helpers import GOOD_IBAN, assert_books_balance, balance, verified_user_with_bank
from tests.wallet.test_stripe_deposits import sign, wait_until


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


def test_demo_payout_pays_and_emails_through_smtp(mail_app, smtp_server):
    with mail_app.app_context():
        admin, user = funded_verified_user("100.00")
        withdrawal = withdrawals.request_withdrawal(user.id, Decimal("40.00"))
        assert balance(user.id) == Decimal("60.00")
        withdrawals.approve_withdrawal(withdrawal.id, admin.id)  # jobs run at once in tests
        db.session.expire_all()
        paid = db.session.get(Withdrawal, withdrawal.id)
        assert (paid.status, paid.provider, paid.decided_by) == ("paid", "demo", admin.id)
        assert [t for t in entry_types() if t != "adjustment"] == ["withdrawal", "withdrawal", "payout"]
        wallet = withdrawals.get_or_create_wallet(user.id)
        assert wallet.total_withdrawn == Decimal("40.00")
        withdrawals.run_payout(withdrawal.id)  # a retried job pays nothing twice
        assert balance(user.id) == Decimal("60.00")
        subjects = [s.removeprefix("[EduTradeX] ") for s in smtp_server.subjects()]
        assert subjects == ["Identity verified", "Withdrawal requested", "Withdrawal paid"]
        assert all(m["To"] == user.email for m in smtp_server.messages)
        body = smtp_server.messages[1].get_payload()
        assert "DE89 **** **** **** 3000" in body and GOOD_IBAN not in body
    assert_books_balance(mail_app)


class RejectingBank:
    """A payout partner that refuses the transfer (the provider interface, not a mock of Stripe)."""

    name = "rejecting-bank"

    def create_payout(self, withdrawal_id, amount, currency, user_id):
        return PayoutResult(reference="", status="failed", failure_message="Account closed at the receiving bank.")


def test_a_failed_payout_is_reversed_once_and_the_user_is_told(mail_app, smtp_server):
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
        assert "Account closed at the receiving bank." in smtp_server.messages[-1].get_payload()
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


def test_stripe_payout_failure_via_webhook_reverses_and_emails(stripe_app, localstripe, smtp_server):
    """Against localstripe: the job creates a Stripe payout (pending); Stripe later reports it
    failed (localstripe: a status update, delivered as a signed payout.updated webhook)."""
    with stripe_app.app_context():
        admin, user = make_admin(), make_user()
        withdrawals_user = user.id
        adjust_credits(user.id, Decimal("80.00"), "Test funds", admin.id)
        verified_user_with_bank(user.id, admin.id)
        withdrawal = withdrawals.request_withdrawal(user.id, Decimal("50.00"))
        withdrawals.approve_withdrawal(withdrawal.id, admin.id)
        db.session.expire_all()
        sent = db.session.get(Withdrawal, withdrawal.id)
        assert (sent.status, sent.provider) == ("processing", "stripe") and sent.provider_ref.startswith("po_")
        payout = localstripe.client().v1.payouts.retrieve(sent.provider_ref)
        assert (payout.amount, payout.currency, payout.metadata.to_dict()["withdrawal_id"]) == (5000, "eur", str(withdrawal.id))
        assert balance(user.id) == Decimal("30.00")

        localstripe.client().v1.payouts.update(sent.provider_ref, params={"status": "failed"})
        wait_until(lambda: (db.session.expire_all(), db.session.get(Withdrawal, withdrawal.id).status)[1] == "failed")
        assert balance(withdrawals_user) == Decimal("80.00")
        smtp_server.wait_for(4)
        subjects = [s.removeprefix("[EduTradeX] ") for s in smtp_server.subjects()]
        assert subjects == ["Identity verified", "Withdrawal requested", "Withdrawal failed"]

        # The same event again (Stripe retries): nothing moves.
        event = next(e for e in localstripe.client().v1.events.list(params={"type": "payout.updated"}).data
                     if e.data.object.id == sent.provider_ref)
        payload = json.dumps(event.to_dict()).encode()
        url = stripe_app.extensions["test_server"].url + "/wallet/webhooks/stripe"
        assert requests.post(url, data=payload, headers={"Stripe-Signature": sign(payload)}, timeout=5).json()["outcome"] == "duplicate"
        assert balance(user.id) == Decimal("80.00")
        reversals = db.session.scalar(db.select(db.func.count()).select_from(LedgerEntry)
                                      .where(LedgerEntry.entry_type == EntryType.WITHDRAWAL_REVERSAL.value))
        assert reversals == 2
    assert_books_balance(stripe_app)


def test_stripe_payout_paid_via_webhook(stripe_app, localstripe, smtp_server):
    with stripe_app.app_context():
        admin, user = make_admin(), make_user()
        adjust_credits(user.id, Decimal("25.00"), "Test funds", admin.id)
        verified_user_with_bank(user.id, admin.id)
        withdrawal = withdrawals.request_withdrawal(user.id, Decimal("25.00"))
        withdrawals.approve_withdrawal(withdrawal.id, admin.id)
        db.session.expire_all()
        ref = db.session.get(Withdrawal, withdrawal.id).provider_ref
        localstripe.client().v1.payouts.update(ref, params={"status": "paid"})
        wait_until(lambda: (db.session.expire_all(), db.session.get(Withdrawal, withdrawal.id).status)[1] == "paid")
        assert balance(user.id) == Decimal("0.00")
        smtp_server.wait_for(3)
        assert smtp_server.subjects()[-1] == "[EduTradeX] Withdrawal paid"
    assert_books_balance(stripe_app)
