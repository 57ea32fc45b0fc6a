"""The KYC review queue and the withdrawals queue. Decisions go through the wallet's own
services (which lock the row, email the user, enqueue the payout or post the reversal);
the admin adds the audit entry to the same transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select

from ...auth.models import User
from ...errors import found
from ...extensions import db
from ...wallet import kyc as kyc_service
from ...wallet import withdrawals as withdrawal_service
from ...wallet.models import KycStatus, KycSubmission, Withdrawal, WithdrawalStatus
from .audit import Actor, audited

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
