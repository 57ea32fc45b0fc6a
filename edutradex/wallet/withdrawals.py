"""Withdrawals: credits out to the user's bank account.

request  -> the credits leave the wallet at once into the pending-withdrawals account;
approve  -> an admin approves; the withdrawal waits for a SEPA batch (batches.py), or, with a
            payout provider that has an API, the payout job pays it (retried with backoff
            by the reconciler until it ends paid or failed);
paid     -> the batch was sent to the bank (or the provider paid): a ``payout`` entry;
rejected / failed -> a ``withdrawal_reversal`` gives the credits back; a payout the bank
            returns after it was paid comes back first (``payout_return``).
Every status change is conditional (status.transition) and every entry has a ledger key, so
a repeat or a race changes nothing twice."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from flask import current_app
from sqlalchemy import select, update

from .. import jobs
from ..auth.models import User
from ..errors import Conflict, DomainError, Forbidden, NotFound, found
from ..extensions import db, socketio
from ..types import utcnow
from .bank import mask_iban, validate_iban
from .crypto import decrypt_text, encrypt_text
from .kyc import is_verified
from .ledger import InsufficientFunds, get_or_create_wallet, platform_account, post_ledger_entry, wallet_account
from .models import BankAccount, EntryType, PlatformAccountKind, Withdrawal, WithdrawalStatus
from .notify import after_commit, commit, email_user, live_update
from .providers import PayoutResult, ProviderUnavailable, payout_provider
from .status import refuse, transition

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
    wallet = get_or_create_wallet(user_id)
    if wallet.withdrawable_balance < amount <= wallet.balance:
        raise InsufficientFunds(f"You can withdraw at most {wallet.withdrawable_balance:.2f} credits: credits bought "
                                "through the demo payment provider are for use on the platform and are never paid out.")
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
    withdrawal = db.session.get(Withdrawal, withdrawal_id)
    if withdrawal is None or withdrawal.user_id != user_id:
        raise NotFound("No such withdrawal.")
    if not give_back(withdrawal_id, (WithdrawalStatus.REQUESTED,), WithdrawalStatus.CANCELED, "Cancelled by you."):
        refuse(Withdrawal, withdrawal_id, "withdrawal", "cancelled")
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

def _withdrawal(withdrawal_id: int) -> Withdrawal:
    return found(db.session.get(Withdrawal, withdrawal_id, populate_existing=True), "No such withdrawal.")


def pending_review() -> list[Withdrawal]:
    return list(db.session.scalars(select(Withdrawal).where(Withdrawal.status == WithdrawalStatus.REQUESTED.value)
                                   .order_by(Withdrawal.created_at)))


def withdrawal_bank_details(withdrawal_id: int) -> BankDetails:
    """The full IBAN is never shown; admins see the masked one and the holder."""
    withdrawal = found(db.session.get(Withdrawal, withdrawal_id), "No such withdrawal.")
    return BankDetails(withdrawal.iban_masked, decrypt_text(withdrawal.holder_encrypted))


def approve_withdrawal(withdrawal_id: int, admin_id: int) -> Withdrawal:
    """With a payout provider, the job is started after the commit; if that start is lost
    (Redis down), the reconciler starts it once ``next_attempt_at`` has passed."""
    if _withdrawal(withdrawal_id).user_id == admin_id:
        raise Forbidden("You cannot approve your own withdrawal. Another admin must review it.")
    provider = payout_provider()
    first_attempt = utcnow() + retry_delay(0) if provider else None
    if not transition(Withdrawal, withdrawal_id, [WithdrawalStatus.REQUESTED], WithdrawalStatus.APPROVED,
                      decided_by=admin_id, decided_at=utcnow(), next_attempt_at=first_attempt):
        refuse(Withdrawal, withdrawal_id, "withdrawal", "approved")
    if provider:
        after_commit(lambda: start_payout_job(withdrawal_id))
    commit()
    return _withdrawal(withdrawal_id)


def reject_withdrawal(withdrawal_id: int, admin_id: int, reason: str) -> Withdrawal:
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("Give the user a reason for the rejection.")
    if not give_back(withdrawal_id, (WithdrawalStatus.REQUESTED,), WithdrawalStatus.REJECTED, reason[:255],
                     decided_by=admin_id, decided_at=utcnow()):
        refuse(Withdrawal, withdrawal_id, "withdrawal", "rejected")
    commit()
    return _withdrawal(withdrawal_id)


def fail_and_reverse(withdrawal_id: int, admin_id: int, reason: str) -> Withdrawal:
    """An admin gives up on an approved withdrawal that no batch or provider has taken:
    the credits go back to the user, once. (One in a batch is failed through its batch.)"""
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("Give the user a reason why the payout is given up.")
    if not give_back(withdrawal_id, (WithdrawalStatus.APPROVED,), WithdrawalStatus.FAILED, reason[:255]):
        refuse(Withdrawal, withdrawal_id, "withdrawal", "failed and reversed (only an approved one can)")
    commit()
    return _withdrawal(withdrawal_id)


def retry_payout(withdrawal_id: int) -> Withdrawal:
    """An admin's "try again now" for an approved withdrawal at a payout provider."""
    if payout_provider() is None:
        raise DomainError("Approved withdrawals are paid by SEPA payout batch: create one on the Payouts page.")
    if not transition(Withdrawal, withdrawal_id, [WithdrawalStatus.APPROVED], WithdrawalStatus.APPROVED,
                      next_attempt_at=utcnow()):
        refuse(Withdrawal, withdrawal_id, "withdrawal", "retried (only an approved one can)")
    after_commit(lambda: start_payout_job(withdrawal_id))
    commit()
    return _withdrawal(withdrawal_id)


# ---- payouts through a provider with an API, retried until they end -------------

# Seconds before attempt n+1 is due (the last one repeats): the provider gets an idempotency
# key per withdrawal, so a retry of a payout whose outcome was unknown pays once.
RETRY_DELAYS = (60, 300, 900, 3600)


def retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=RETRY_DELAYS[min(attempts, len(RETRY_DELAYS) - 1)])


def start_payout_job(withdrawal_id: int) -> None:
    jobs.enqueue(run_payout, withdrawal_id, job_id=f"payout-{withdrawal_id}")


@jobs.job
def run_payout(withdrawal_id: int) -> str:
    """The payout job: pays an approved withdrawal through the provider, or asks the provider
    how a payout it accepted ("pending") ended. Safe to run twice or at once: an attempt is
    claimed by a conditional update of the attempt counter, and each claim schedules the
    next attempt, so a provider that cannot be reached (or has not decided yet) is asked
    again by the reconciler, backing off, until the withdrawal is paid or failed."""
    provider = payout_provider()
    withdrawal = _withdrawal(withdrawal_id)
    status, attempts = withdrawal.status, withdrawal.payout_attempts
    at_provider = status == WithdrawalStatus.PROCESSING.value and withdrawal.next_attempt_at is not None
    if provider is None or not (status == WithdrawalStatus.APPROVED.value or at_provider):
        db.session.rollback()
        return status
    amount, currency, user_id, reference = withdrawal.amount, withdrawal.currency, withdrawal.user_id, withdrawal.provider_ref
    claim = (update(Withdrawal).where(Withdrawal.id == withdrawal_id, Withdrawal.status == status,
                                      Withdrawal.payout_attempts == attempts)
             .values(payout_attempts=attempts + 1, next_attempt_at=utcnow() + retry_delay(attempts + 1)))
    claimed = db.session.execute(claim).rowcount == 1
    commit()  # no transaction stays open while the provider is called
    if not claimed:
        return _withdrawal(withdrawal_id).status  # another run has this attempt
    try:
        if at_provider:
            result = provider.payout_status(withdrawal_id, reference)
        else:
            result = provider.create_payout(withdrawal_id, amount, currency, user_id)
    except ProviderUnavailable as exc:
        log.warning("payout %s: %s unreachable (attempt %s), retried later: %s", withdrawal_id, provider.name,
                    attempts + 1, exc)
        db.session.execute(update(Withdrawal).where(Withdrawal.id == withdrawal_id).values(last_error=str(exc)[:255]))
        commit()
        return status
    provider_reported(withdrawal_id, provider.name, result)
    commit()
    return _withdrawal(withdrawal_id).status


def provider_reported(withdrawal_id: int, provider_name: str, result: PayoutResult) -> None:
    """What a payout provider says about a withdrawal (its API's answer or its webhook), in
    the caller's transaction. Whoever reports first moves it; a repeat changes nothing. A
    pending payout keeps its next check scheduled."""
    sent = {"provider": provider_name, "provider_ref": result.reference or None}
    if result.status == "failed":
        give_back(withdrawal_id, (WithdrawalStatus.APPROVED, WithdrawalStatus.PROCESSING), WithdrawalStatus.FAILED,
                  result.failure_message or "The payout failed.", **sent)
        return
    transition(Withdrawal, withdrawal_id, [WithdrawalStatus.APPROVED], WithdrawalStatus.PROCESSING, **sent)
    if result.status == "paid":
        mark_paid(withdrawal_id)


def due_payouts(now=None, limit: int = 100) -> list[int]:
    """Withdrawals whose payout attempt is due: approved ones whose job was never started,
    was lost, or found the provider unreachable; ones the provider has not decided yet.
    (Withdrawals in a SEPA batch have no next attempt: the admin closes their batch.)"""
    now = now or utcnow()
    return list(db.session.scalars(
        select(Withdrawal.id).where(Withdrawal.status.in_([WithdrawalStatus.APPROVED, WithdrawalStatus.PROCESSING]),
                                    Withdrawal.next_attempt_at.is_not(None), Withdrawal.next_attempt_at <= now)
        .order_by(Withdrawal.next_attempt_at, Withdrawal.id).limit(limit)))


def reconcile_payouts(now=None) -> int:
    """Start the payout job of every due withdrawal (a job already queued under the same id
    is left alone). With SEPA batches there is nothing to start: approved withdrawals wait
    for an admin's batch. Returns how many jobs were started."""
    if payout_provider() is None:
        return 0
    due = due_payouts(now)
    db.session.rollback()
    for withdrawal_id in due:
        start_payout_job(withdrawal_id)
    return len(due)


def payout_reconciler(app) -> None:
    """The background service (in the feed process, or the web process in the embedded default)."""
    interval = app.config["PAYOUT_RECONCILE_SECONDS"]
    while True:
        with app.app_context():
            try:
                started = reconcile_payouts()
                if started:
                    log.info("payout reconciler started %s payout job(s)", started)
            except Exception:
                log.exception("payout reconciliation failed; it runs again in %s s", interval)
            finally:
                db.session.remove()
        socketio.sleep(interval)


# ---- the end of a withdrawal: paid, given back, returned -------------------------

def mark_paid(withdrawal_id: int, transfer_note: str | None = None) -> bool:
    """PROCESSING -> PAID and the payout entry, once; the user is emailed after the commit."""
    if not transition(Withdrawal, withdrawal_id, [WithdrawalStatus.PROCESSING], WithdrawalStatus.PAID,
                      completed_at=utcnow(), next_attempt_at=None):
        return False
    withdrawal = _withdrawal(withdrawal_id)
    post_ledger_entry(EntryType.PAYOUT, withdrawal.amount, debit=pending_withdrawals_account(), credit=None,
                      idempotency_key=f"withdrawal:{withdrawal_id}:payout", reference=f"withdrawal:{withdrawal_id}")
    user = db.session.get(User, withdrawal.user_id)
    email, name, amount, masked = user.email, user.name, withdrawal.amount, withdrawal.iban_masked
    after_commit(lambda: email_user(email, "Withdrawal paid", "withdrawal_paid", f"withdrawal-{withdrawal_id}-paid",
                                    name=name, amount=amount, iban_masked=masked, withdrawal_id=withdrawal_id,
                                    transfer_note=transfer_note))
    return True


def return_paid(withdrawal_id: int, reason: str) -> bool:
    """The bank sent a paid transfer back (account closed, wrong name): the money is back
    at the platform (``payout_return``), then goes back to the user like any failure."""
    withdrawal = _withdrawal(withdrawal_id)
    if withdrawal.status != WithdrawalStatus.PAID.value:
        return False
    post_ledger_entry(EntryType.PAYOUT_RETURN, withdrawal.amount, debit=None, credit=pending_withdrawals_account(),
                      idempotency_key=f"withdrawal:{withdrawal_id}:return", reference=f"withdrawal:{withdrawal_id}",
                      reason=reason)
    if not give_back(withdrawal_id, (WithdrawalStatus.PAID,), WithdrawalStatus.FAILED, reason):
        raise Conflict(f"Withdrawal {withdrawal_id} changed while its return was recorded: try again.")
    return True


def give_back(withdrawal_id: int, expected: tuple[WithdrawalStatus, ...], status: WithdrawalStatus, reason: str,
              **values) -> bool:
    """Reverse a withdrawal that will not be paid, if it is still in one of ``expected``:
    the credits return to the wallet, once. False when it had already moved on."""
    values = {"next_attempt_at": None, **values}
    if not transition(Withdrawal, withdrawal_id, expected, status, failure_reason=reason, completed_at=utcnow(),
                      **values):
        return False
    withdrawal = _withdrawal(withdrawal_id)
    entries = post_ledger_entry(EntryType.WITHDRAWAL_REVERSAL, withdrawal.amount, debit=pending_withdrawals_account(),
                                credit=wallet_account(withdrawal.user_id),
                                idempotency_key=f"withdrawal:{withdrawal_id}:reversal",
                                reference=f"withdrawal:{withdrawal_id}", reason=reason)
    user = db.session.get(User, withdrawal.user_id)
    user_id, email, name, amount = user.id, user.email, user.name, withdrawal.amount
    balance = next(e.balance_after for e in entries if e.wallet_id is not None)
    rejected = status == WithdrawalStatus.REJECTED

    def notify() -> None:
        if status == WithdrawalStatus.CANCELED:
            live_update(user_id, balance)
            return
        live_update(user_id, balance,
                    f"Withdrawal {withdrawal_id} {'rejected' if rejected else 'failed'}: the credits are back.", "error")
        email_user(email, "Withdrawal rejected" if rejected else "Withdrawal failed", "withdrawal_failed",
                   f"withdrawal-{withdrawal_id}-{status.value}", name=name, amount=amount, reason=reason,
                   balance=balance, withdrawal_id=withdrawal_id, rejected=rejected)

    after_commit(notify)
    return True
