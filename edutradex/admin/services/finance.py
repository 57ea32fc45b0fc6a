"""The KYC review queue, the withdrawals queue and the SEPA payout batches. Decisions go
through the wallet's own services (which change the status conditionally, email the user,
start the payout or post the reversal); the admin adds the audit entry to the same
transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select

from ...auth.models import User
from ...errors import found
from ...extensions import db
from ...wallet import batches as batch_service
from ...wallet import kyc as kyc_service
from ...wallet import withdrawals as withdrawal_service
from ...wallet.models import (
    KycStatus,
    KycSubmission,
    PayoutBatch,
    PayoutBatchLine,
    PayoutBatchStatus,
    PayoutLineStatus,
    Withdrawal,
    WithdrawalStatus,
)
from .audit import Actor, audited, jsonable, record_audit

KYC_STATUSES = [s.value for s in KycStatus]
WITHDRAWAL_STATUSES = [s.value for s in WithdrawalStatus]


def _status(raw: str, allowed: list[str], default: str) -> str:
    return raw if raw in allowed or raw == "all" else default


def kyc_query(status: str) -> tuple[str, Select]:
    status = _status(status, KYC_STATUSES, KycStatus.PENDING.value)
    query = select(KycSubmission)
    if status != "all":
        query = query.where(KycSubmission.status == status)
    # The queue is worked oldest first; decided ones are read newest first.
    order = KycSubmission.submitted_at.asc() if status == KycStatus.PENDING.value else KycSubmission.submitted_at.desc()
    return status, query.order_by(order, KycSubmission.id)


def _kyc_row(submission_id: int) -> KycSubmission:
    return found(db.session.get(KycSubmission, submission_id), "No such KYC submission.")


def approve_kyc(actor: Actor, submission_id: int, note: str | None) -> KycSubmission:
    submission = _kyc_row(submission_id)
    return audited(actor, "kyc.approve", "kyc_submission", submission.id,
                   before={"status": submission.status, "user_id": submission.user_id},
                   after={"status": KycStatus.APPROVED.value}, note=note,
                   perform=lambda: kyc_service.approve_kyc(submission.id, actor.user_id))


def reject_kyc(actor: Actor, submission_id: int, reason: str) -> KycSubmission:
    submission = _kyc_row(submission_id)
    return audited(actor, "kyc.reject", "kyc_submission", submission.id,
                   before={"status": submission.status, "user_id": submission.user_id},
                   after={"status": KycStatus.REJECTED.value, "reason": reason}, note=reason,
                   perform=lambda: kyc_service.reject_kyc(submission.id, actor.user_id, reason))


@dataclass(frozen=True)
class WithdrawalRow:
    withdrawal: Withdrawal
    user: User
    holder: str


def withdrawal_query(status: str) -> tuple[str, Select]:
    status = _status(status, WITHDRAWAL_STATUSES, WithdrawalStatus.REQUESTED.value)
    query = select(Withdrawal)
    if status != "all":
        query = query.where(Withdrawal.status == status)
    order = Withdrawal.created_at.asc() if status == WithdrawalStatus.REQUESTED.value else Withdrawal.created_at.desc()
    return status, query.order_by(order, Withdrawal.id)


def users_by_id(user_ids: set[int]) -> dict[int, User]:
    return {user.id: user for user in db.session.scalars(select(User).where(User.id.in_(user_ids)))}


def kyc_rows(submissions: list[KycSubmission]) -> list[tuple[KycSubmission, User, dict[str, Any]]]:
    users = users_by_id({s.user_id for s in submissions})
    return [(s, users[s.user_id], kyc_service.submission_details(s.id)) for s in submissions]


def withdrawal_rows(withdrawals: list[Withdrawal]) -> list[WithdrawalRow]:
    users = users_by_id({w.user_id for w in withdrawals})
    return [WithdrawalRow(w, users[w.user_id], withdrawal_service.withdrawal_bank_details(w.id).holder)
            for w in withdrawals]


def _withdrawal_row(withdrawal_id: int) -> Withdrawal:
    return found(db.session.get(Withdrawal, withdrawal_id), "No such withdrawal.")


def approve_withdrawal(actor: Actor, withdrawal_id: int, note: str | None) -> Withdrawal:
    withdrawal = _withdrawal_row(withdrawal_id)
    return audited(actor, "withdrawal.approve", "withdrawal", withdrawal.id,
                   before={"status": withdrawal.status, "amount": withdrawal.amount, "user_id": withdrawal.user_id},
                   after={"status": WithdrawalStatus.APPROVED.value}, note=note,
                   perform=lambda: withdrawal_service.approve_withdrawal(withdrawal.id, actor.user_id))


def reject_withdrawal(actor: Actor, withdrawal_id: int, reason: str) -> Withdrawal:
    withdrawal = _withdrawal_row(withdrawal_id)
    return audited(actor, "withdrawal.reject", "withdrawal", withdrawal.id,
                   before={"status": withdrawal.status, "amount": withdrawal.amount, "user_id": withdrawal.user_id},
                   after={"status": WithdrawalStatus.REJECTED.value, "reason": reason}, note=reason,
                   perform=lambda: withdrawal_service.reject_withdrawal(withdrawal.id, actor.user_id, reason))


def retry_payout(actor: Actor, withdrawal_id: int) -> Withdrawal:
    withdrawal = _withdrawal_row(withdrawal_id)
    return audited(actor, "withdrawal.retry", "withdrawal", withdrawal.id,
                   before={"status": withdrawal.status, "payout_attempts": withdrawal.payout_attempts,
                           "last_error": withdrawal.last_error},
                   after={"status": WithdrawalStatus.APPROVED.value, "retry": "now"},
                   perform=lambda: withdrawal_service.retry_payout(withdrawal.id))


def fail_and_reverse(actor: Actor, withdrawal_id: int, reason: str) -> Withdrawal:
    withdrawal = _withdrawal_row(withdrawal_id)
    return audited(actor, "withdrawal.fail", "withdrawal", withdrawal.id,
                   before={"status": withdrawal.status, "amount": withdrawal.amount, "user_id": withdrawal.user_id},
                   after={"status": WithdrawalStatus.FAILED.value, "reason": reason}, note=reason,
                   perform=lambda: withdrawal_service.fail_and_reverse(withdrawal.id, actor.user_id, reason))


# ---- SEPA payout batches --------------------------------------------------------------

@dataclass(frozen=True)
class BatchLineRow:
    line: PayoutBatchLine
    withdrawal: Withdrawal
    user: User
    holder: str


def batch_line_rows(batch: PayoutBatch) -> list[BatchLineRow]:
    withdrawals = {w.id: w for w in db.session.scalars(
        select(Withdrawal).where(Withdrawal.id.in_([line.withdrawal_id for line in batch.lines])))}
    users = users_by_id({w.user_id for w in withdrawals.values()})
    return [BatchLineRow(line, withdrawals[line.withdrawal_id], users[withdrawals[line.withdrawal_id].user_id],
                         withdrawal_service.withdrawal_bank_details(line.withdrawal_id).holder)
            for line in batch.lines]


def create_batch(actor: Actor) -> PayoutBatch:
    """The entry is written in the batch's own transaction; its id is known only once the
    batch exists, so it is filled in after."""
    entry = record_audit(actor, "payout_batch.create", "payout_batch", None, before=None, after=None)
    try:
        batch = batch_service.create_batch(actor.user_id)
    except BaseException:
        db.session.rollback()
        raise
    entry.target_id = str(batch.id)
    entry.after = jsonable({"status": batch.status, "lines": batch.line_count, "total": batch.total,
                            "withdrawal_ids": [line.withdrawal_id for line in batch.lines]})
    db.session.commit()
    return batch


def download_batch(actor: Actor, batch_id: int) -> tuple[str, bytes]:
    """The pain.001 file (the users' IBANs in clear): who downloaded it is on record."""
    batch = batch_service.get_batch(batch_id)
    record_audit(actor, "payout_batch.download", "payout_batch", batch.id, before={"status": batch.status},
                 after={"lines": batch.line_count, "total": batch.total})
    try:
        xml = batch_service.batch_xml(batch.id)
    except BaseException:
        db.session.rollback()
        raise
    db.session.commit()
    return f"payout-batch-{batch.id}-{batch.message_id}.xml", xml


def mark_batch_sent(actor: Actor, batch_id: int, bank_reference: str) -> PayoutBatch:
    batch = batch_service.get_batch(batch_id)
    return audited(actor, "payout_batch.sent", "payout_batch", batch.id, before={"status": batch.status},
                   after={"status": PayoutBatchStatus.SENT.value, "bank_reference": bank_reference},
                   perform=lambda: batch_service.mark_batch_sent(batch.id, actor.user_id, bank_reference))


def fail_batch(actor: Actor, batch_id: int, reason: str) -> PayoutBatch:
    batch = batch_service.get_batch(batch_id)
    return audited(actor, "payout_batch.fail", "payout_batch", batch.id, before={"status": batch.status},
                   after={"status": PayoutBatchStatus.FAILED.value}, note=reason,
                   perform=lambda: batch_service.fail_batch(batch.id, actor.user_id, reason))


def fail_batch_line(actor: Actor, batch_id: int, line_id: int, reason: str) -> PayoutBatchLine:
    line = found(db.session.get(PayoutBatchLine, line_id), "No such line in this batch.")
    return audited(actor, "payout_batch_line.fail", "payout_batch_line", line.id,
                   before={"status": line.status, "batch_id": line.batch_id, "withdrawal_id": line.withdrawal_id,
                           "amount": line.amount},
                   after={"status": PayoutLineStatus.FAILED.value}, note=reason,
                   perform=lambda: batch_service.fail_batch_line(batch_id, line_id, reason))
