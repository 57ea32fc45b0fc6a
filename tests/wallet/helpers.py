"""Shared helpers for the wallet tests."""

from __future__ import annotations

from decimal import Decimal

from edutradex.extensions import db
from edutradex.wallet import kyc
from edutradex.wallet.ledger import get_or_create_wallet
from edutradex.wallet.withdrawals import save_bank_account

GOOD_IBAN = "DE89370400440532013000"


def assert_books_balance(app) -> str:
    """Run the real `flask wallet verify` command; fail with its output if it does not pass."""
    result = app.test_cli_runner().invoke(args=["wallet", "verify"])
    assert result.exit_code == 0, result.output
    return result.output


def balance(user_id: int) -> Decimal:
    db.session.expire_all()
    return get_or_create_wallet(user_id).balance


def verified_user_with_bank(user_id: int, admin_id: int) -> None:
    submission = kyc.submit_kyc(user_id, "Mike Trader", "1990-04-01", "DE", "Hauptstr. 1, 10115 Berlin", "C01X00T47")
    kyc.approve_kyc(submission.id, admin_id)
    save_bank_account(user_id, GOOD_IBAN, "Mike Trader")


class FlakyBank:
    """A payout partner with an API (the PayoutProvider seam, as Stripe Connect would be):
    unreachable for its first ``outages`` calls, then it pays — at once, or after answering
    "pending" to its first ``undecided`` status questions. Like a real provider it is
    idempotent per withdrawal: a repeat returns the payout it already made."""

    name = "flaky-bank"

    def __init__(self, outages: int = 0, *, settles_later: bool = False, undecided: int = 0):
        self.outages, self.settles_later, self.undecided = outages, settles_later, undecided
        self.calls: list[int] = []
        self.status_checks: list[int] = []
        self.paid: dict[int, str] = {}

    def create_payout(self, withdrawal_id, amount, currency, user_id):
        from edutradex.wallet.providers import PayoutResult, ProviderUnavailable

        self.calls.append(withdrawal_id)
        if len(self.calls) <= self.outages:
            raise ProviderUnavailable("flaky-bank: connection refused")
        self.paid.setdefault(withdrawal_id, f"fb-{withdrawal_id}")
        return PayoutResult(reference=self.paid[withdrawal_id], status="pending" if self.settles_later else "paid")

    def payout_status(self, withdrawal_id, reference):
        from edutradex.wallet.providers import PayoutResult

        self.status_checks.append(withdrawal_id)
        assert reference == self.paid[withdrawal_id]
        decided = len(self.status_checks) > self.undecided
        return PayoutResult(reference=reference, status="paid" if decided else "pending")
