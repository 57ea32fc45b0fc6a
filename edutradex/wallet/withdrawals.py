"""Withdrawals: credits out to the user's bank account.

request  -> the credits leave the wallet at once into the pending-withdrawals account;
approve  -> an admin approves, the payout job pays through the provider;
paid     -> the payout leaves the platform (a ``payout`` entry);
rejected / failed -> a ``withdrawal_reversal`` gives the credits back.
Every step is idempotent: its ledger key and a status check make a repeat a no-op."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from flask import current_app
from sqlalchemy import select

from .. import jobs
from ..auth.models import User
from ..errors import Conflict, DomainError, Forbidden, NotFound, found
from ..extensions import db
from ..types import utcnow
from .crypto import decrypt_text, encrypt_text
from .iban import mask_iban, validate_iban
from .kyc import is_verified
from .ledger import InsufficientFunds, get_or_create_wallet, platform_account, post_ledger_entry, wallet_account
from .models import BankAccount, EntryType, PlatformAccountKind, Withdrawal, WithdrawalStatus
from .notify import after_commit, commit, email_user, live_update
from .providers import ProviderUnavailable, payout_provider

log = logging.getLogger(__name__)

OPEN_STATUSES = (WithdrawalStatus.REQUESTED.value, WithdrawalStatus.APPROVED.value, WithdrawalStatus.PROCESSING.value)


def pending_withdrawals_account():
    return platform_account(PlatformAccountKind.PENDING_WITHDRAWALS)


# ---- bank details ---------------------------------------------------------------

@dataclass(frozen=True)
class BankDetails:
    iban_masked: str
    holder: str


def save_bank_account(user_id: int, iban: str, holder: str) -> BankDetails:
    iban = validate_iban(iban)
    holder = " ".join((holder or "").split())
    if not 2 <= len(holder) <= 100:
        raise DomainError("Enter the account holder's name as the bank knows it.", field="holder")
    account = db.session.scalar(select(BankAccount).where(BankAccount.user_id == user_id))
    if account is None:
        account = BankAccount(user_id=user_id)
        db.session.add(account)
    account.iban_encrypted = encrypt_text(iban)
    account.holder_encrypted = encrypt_text(holder)
    account.iban_masked = mask_iban(iban)
    commit()
    return BankDetails(account.iban_masked, holder)


def bank_details(user_id: int) -> BankDetails | None:
    account = db.session.scalar(select(BankAccount).where(BankAccount.user_id == user_id))
    if account is None:
        return None
    return BankDetails(account.iban_masked, decrypt_text(account.holder_encrypted))


# ---- the user's side ------------------------------------------------------------

def withdrawal_blockers(user_id: int) -> list[str]:
    """Why this user cannot withdraw now (empty when they can)."""
    reasons = []
    if not is_verified(user_id):
        reasons.append("Verify your identity first.")
    if not get_or_create_wallet(user_id).withdrawals_enabled:
        reasons.append("Withdrawals are disabled for this account. Contact support.")
    if db.session.scalar(select(BankAccount.id).where(BankAccount.user_id == user_id)) is None:
        reasons.append("Add your bank account first.")
    return reasons


def request_withdrawal(user_id: int, amount: Decimal) -> Withdrawal:
    blockers = withdrawal_blockers(user_id)
    if blockers:
        raise Forbidden(" ".join(blockers))
    minimum = Decimal(current_app.config["WITHDRAWAL_MIN"])
    if amount < minimum:
        raise DomainError(f"The minimum withdrawal is {minimum:.2f} credits.")
    bank = db.session.scalar(select(BankAccount).where(BankAccount.user_id == user_id))
    withdrawal = Withdrawal(user_id=user_id, amount=amount, iban_encrypted=bank.iban_encrypted,
                            holder_encrypted=bank.holder_encrypted, iban_masked=bank.iban_masked)
    db.session.add(withdrawal)
    db.session.flush()
    try:
        entries = post_ledger_entry(EntryType.WITHDRAWAL, amount, debit=wallet_account(user_id),
                                    credit=pending_withdrawals_account(), idempotency_key=f"withdrawal:{withdrawal.id}",
                                    reference=f"withdrawal:{withdrawal.id}")
    except InsufficientFunds:
        db.session.rollback()
        raise InsufficientFunds("You cannot withdraw more than your balance.") from None
    user = db.session.get(User, user_id)
    email, name, wid, masked = user.email, user.name, withdrawal.id, withdrawal.iban_masked
    balance = next(e.balance_after for e in entries if e.wallet_id is not None)

    def notify() -> None:
        live_update(user_id, balance)  # the requesting page shows its own confirmation
        email_user(email, "Withdrawal requested", "withdrawal_requested", f"withdrawal-{wid}-requested",
                   name=name, amount=amount, iban_masked=masked, withdrawal_id=wid)

    after_commit(notify)
    commit()
    return withdrawal


def cancel_withdrawal(user_id: int, withdrawal_id: int) -> Withdrawal:
    """The user changes their mind before an admin has decided: the credits come back."""
    withdrawal = _locked(withdrawal_id)
    if withdrawal.user_id != user_id:
        raise NotFound("No such withdrawal.")
    if withdrawal.status != WithdrawalStatus.REQUESTED.value:
        raise Conflict(f"This withdrawal is already {withdrawal.status} and can no longer be cancelled.")
    _give_back(withdrawal, WithdrawalStatus.CANCELED, "Cancelled by you.")
    commit()
    return withdrawal


def user_withdrawals(user_id: int, limit: int = 10) -> list[Withdrawal]:
    return list(db.session.scalars(select(Withdrawal).where(Withdrawal.user_id == user_id)
                                   .order_by(Withdrawal.id.desc()).limit(limit)))


def get_user_withdrawal(user_id: int, withdrawal_id: int) -> Withdrawal:
    withdrawal = db.session.get(Withdrawal, withdrawal_id)
    if withdrawal is None or withdrawal.user_id != user_id:
        raise NotFound("No such withdrawal.")
    return withdrawal


# ---- the admin's side and the payout --------------------------------------------

def _locked(withdrawal_id: int) -> Withdrawal:
    query = select(Withdrawal).where(Withdrawal.id == withdrawal_id).with_for_update()
    return found(db.session.scalar(query.execution_options(populate_existing=True)), "No such withdrawal.")


def pending_review() -> list[Withdrawal]:
    return list(db.session.scalars(select(Withdrawal).where(Withdrawal.status == WithdrawalStatus.REQUESTED.value)
                                   .order_by(Withdrawal.created_at)))


def withdrawal_bank_details(withdrawal_id: int) -> BankDetails:
    """The full IBAN is never shown; admins see the masked one and the holder."""
    withdrawal = found(db.session.get(Withdrawal, withdrawal_id), "No such withdrawal.")
    return BankDetails(withdrawal.iban_masked, decrypt_text(withdrawal.holder_encrypted))


def approve_withdrawal(withdrawal_id: int, admin_id: int) -> Withdrawal:
    withdrawal = _locked(withdrawal_id)
    if withdrawal.status != WithdrawalStatus.REQUESTED.value:
        raise Conflict(f"This withdrawal is already {withdrawal.status}.")
    withdrawal.status = WithdrawalStatus.APPROVED.value
    withdrawal.decided_by = admin_id
    withdrawal.decided_at = utcnow()
    wid = withdrawal.id
    after_commit(lambda: jobs.enqueue(run_payout, wid, job_id=f"payout-{wid}"))
    commit()
    return withdrawal


def reject_withdrawal(withdrawal_id: int, admin_id: int, reason: str) -> Withdrawal:
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("Give the user a reason for the rejection.")
    withdrawal = _locked(withdrawal_id)
    if withdrawal.status != WithdrawalStatus.REQUESTED.value:
        raise Conflict(f"This withdrawal is already {withdrawal.status}.")
    withdrawal.decided_by = admin_id
    withdrawal.decided_at = utcnow()
    _give_back(withdrawal, WithdrawalStatus.REJECTED, reason[:255])
    commit()
    return withdrawal


@jobs.job
def run_payout(withdrawal_id: int) -> str:
    """The payout job. Safe to run twice: only an approved withdrawal is paid, and the
    provider gets an idempotency key derived from the withdrawal."""
    withdrawal = _locked(withdrawal_id)
    if withdrawal.status != WithdrawalStatus.APPROVED.value:
        db.session.rollback()
        return withdrawal.status
    provider = payout_provider()
    amount, currency, user_id = withdrawal.amount, withdrawal.currency, withdrawal.user_id
    commit()  # no transaction stays open while the provider is called
    try:
        result = provider.create_payout(withdrawal_id, amount, currency, user_id)
    except ProviderUnavailable:
        log.exception("payout for withdrawal %s could not reach %s; the job can be retried", withdrawal_id, provider.name)
        raise
    withdrawal = _locked(withdrawal_id)
    if withdrawal.status != WithdrawalStatus.APPROVED.value:  # a webhook got here first
        db.session.rollback()
        return withdrawal.status
    withdrawal.provider = provider.name
    withdrawal.provider_ref = result.reference or None
    if result.status == "paid":
        _mark_paid(withdrawal)
    elif result.status == "failed":
        _give_back(withdrawal, WithdrawalStatus.FAILED, result.failure_message or "The payout failed.")
    else:
        withdrawal.status = WithdrawalStatus.PROCESSING.value
    commit()
    return withdrawal.status


def payout_event(payout) -> None:
    """Stripe ``payout.*`` webhooks (in the caller's transaction)."""
    metadata = payout.get("metadata") or {}
    withdrawal = db.session.scalar(select(Withdrawal).where(Withdrawal.provider_ref == payout["id"]).with_for_update())
    if withdrawal is None and str(metadata.get("withdrawal_id", "")).isdigit():
        withdrawal = db.session.scalar(select(Withdrawal).where(Withdrawal.id == int(metadata["withdrawal_id"]))
                                       .with_for_update())
    if withdrawal is None:
        log.warning("payout webhook for unknown payout %s ignored", payout["id"])
        return
    withdrawal.provider_ref = withdrawal.provider_ref or payout["id"]
    status = payout["status"]
    if status == "paid":
        _mark_paid(withdrawal)
    elif status in ("failed", "canceled"):
        _give_back(withdrawal, WithdrawalStatus.FAILED, payout.get("failure_message") or f"The payout was {status}.")


def _mark_paid(withdrawal: Withdrawal) -> None:
    if withdrawal.status == WithdrawalStatus.PAID.value:
        return
    if withdrawal.status not in (WithdrawalStatus.APPROVED.value, WithdrawalStatus.PROCESSING.value):
        log.error("withdrawal %s reported paid while %s: needs a person", withdrawal.id, withdrawal.status)
        return
    post_ledger_entry(EntryType.PAYOUT, withdrawal.amount, debit=pending_withdrawals_account(), credit=None,
                      idempotency_key=f"withdrawal:{withdrawal.id}:payout", reference=f"withdrawal:{withdrawal.id}")
    withdrawal.status = WithdrawalStatus.PAID.value
    withdrawal.completed_at = utcnow()
    user = db.session.get(User, withdrawal.user_id)
    email, name, wid, amount, masked = user.email, user.name, withdrawal.id, withdrawal.amount, withdrawal.iban_masked
    after_commit(lambda: email_user(email, "Withdrawal paid", "withdrawal_paid", f"withdrawal-{wid}-paid",
                                    name=name, amount=amount, iban_masked=masked, withdrawal_id=wid))


def _give_back(withdrawal: Withdrawal, status: WithdrawalStatus, reason: str) -> None:
    """Reverse a withdrawal that will not be paid: the credits return to the wallet."""
    if withdrawal.status in (WithdrawalStatus.FAILED.value, WithdrawalStatus.REJECTED.value,
                             WithdrawalStatus.CANCELED.value):
        return
    if withdrawal.status == WithdrawalStatus.PAID.value:
        log.error("withdrawal %s failed after it was paid (%s): needs a person", withdrawal.id, reason)
        return
    entries = post_ledger_entry(EntryType.WITHDRAWAL_REVERSAL, withdrawal.amount, debit=pending_withdrawals_account(),
                                credit=wallet_account(withdrawal.user_id),
                                idempotency_key=f"withdrawal:{withdrawal.id}:reversal",
                                reference=f"withdrawal:{withdrawal.id}", reason=reason)
    withdrawal.status = status.value
    withdrawal.failure_reason = reason
    withdrawal.completed_at = utcnow()
    user = db.session.get(User, withdrawal.user_id)
    user_id, email, name, wid, amount = user.id, user.email, user.name, withdrawal.id, withdrawal.amount
    balance = next(e.balance_after for e in entries if e.wallet_id is not None)
    rejected = status == WithdrawalStatus.REJECTED

    def notify() -> None:
        if status == WithdrawalStatus.CANCELED:
            live_update(user_id, balance)
            return
        live_update(user_id, balance, f"Withdrawal {wid} {'rejected' if rejected else 'failed'}: the credits are back.",
                    "error")
        email_user(email, "Withdrawal rejected" if rejected else "Withdrawal failed", "withdrawal_failed",
                   f"withdrawal-{wid}-{status.value}", name=name, amount=amount, reason=reason, balance=balance,
                   withdrawal_id=wid, rejected=rejected)

    after_commit(notify)
