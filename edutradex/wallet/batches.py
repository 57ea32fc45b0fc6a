"""SEPA payout batches: how approved withdrawals reach the users' own bank accounts.

1. An admin collects the approved withdrawals into a batch (each one moves APPROVED ->
   PROCESSING once, so no withdrawal is in two batches);
2. downloads its pain.001 credit-transfer file (the IBANs are decrypted only to write it)
   and uploads it to the platform's bank, which pays from the debtor account configured in
   PAYOUT_DEBTOR_NAME / PAYOUT_DEBTOR_IBAN / PAYOUT_DEBTOR_BIC;
3. marks the batch sent with the bank's reference: only then are its withdrawals paid (a
   ``payout`` entry each) and the users emailed.
A batch the bank refuses is marked failed: its withdrawals are given back. One line the
bank refuses or returns is failed alone; a returned payout comes back first. Every step is
a conditional status change, so a repeat or a race changes nothing twice."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from flask import current_app
from sepaxml import SepaTransfer
from sqlalchemy import Select, func, select

from ..errors import DomainError, found
from ..extensions import db
from ..types import utcnow
from .bank import InvalidBic, InvalidIban, mask_iban, validate_bic, validate_iban
from .crypto import decrypt_text
from .models import (
    PayoutBatch,
    PayoutBatchLine,
    PayoutBatchStatus,
    PayoutLineStatus,
    Withdrawal,
    WithdrawalStatus,
)
from .notify import commit
from .providers import payout_provider, to_cents
from .status import refuse, transition
from .withdrawals import give_back, mark_paid, return_paid

MAX_LINES = 500
SCHEMA = "pain.001.001.03"


@dataclass(frozen=True)
class DebtorAccount:
    name: str
    iban: str
    bic: str

    @property
    def iban_masked(self) -> str:
        return mask_iban(self.iban)


def debtor_account() -> DebtorAccount:
    """The platform's own account the bank pays from (settings, validated on use)."""
    config = current_app.config
    missing = [key for key in ("PAYOUT_DEBTOR_NAME", "PAYOUT_DEBTOR_IBAN", "PAYOUT_DEBTOR_BIC") if not config.get(key)]
    if missing:
        raise DomainError(f"Payout batches need the platform's bank account: set {', '.join(missing)}.")
    try:
        iban = validate_iban(config["PAYOUT_DEBTOR_IBAN"], field="PAYOUT_DEBTOR_IBAN")
        bic = validate_bic(config["PAYOUT_DEBTOR_BIC"])
    except (InvalidIban, InvalidBic) as exc:
        raise DomainError(f"The platform's bank account is misconfigured: {exc.message}") from None
    return DebtorAccount(" ".join(config["PAYOUT_DEBTOR_NAME"].split())[:70], iban, bic)


def awaiting_batch() -> Select:
    return (select(Withdrawal).where(Withdrawal.status == WithdrawalStatus.APPROVED.value)
            .order_by(Withdrawal.decided_at, Withdrawal.id))


def awaiting_summary() -> tuple[int, Decimal]:
    count, total = db.session.execute(select(func.count(), func.sum(Withdrawal.amount))
                                      .where(Withdrawal.status == WithdrawalStatus.APPROVED.value)).one()
    return count, total or Decimal("0.00")


def create_batch(admin_id: int) -> PayoutBatch:
    """Collect the approved withdrawals (oldest first, at most MAX_LINES) into a new batch."""
    if payout_provider() is not None:
        raise DomainError("Approved withdrawals are paid by the payout provider, not by SEPA batches.")
    debtor_account()  # refuse before anything moves when the bank account is not configured
    candidates = list(db.session.scalars(awaiting_batch().limit(MAX_LINES)))
    batch = PayoutBatch(message_id=f"EDX{utcnow():%Y%m%d%H%M%S}{uuid.uuid4().hex[:12]}", total=Decimal("0.00"),
                        line_count=0, created_by=admin_id, status=PayoutBatchStatus.OPEN.value)
    db.session.add(batch)
    db.session.flush()
    total, count = Decimal("0.00"), 0
    for withdrawal in candidates:
        # Another admin's batch (or a fail-and-reverse) may have taken it since the read.
        if not transition(Withdrawal, withdrawal.id, [WithdrawalStatus.APPROVED], WithdrawalStatus.PROCESSING,
                          provider="sepa", next_attempt_at=None):
            continue
        db.session.add(PayoutBatchLine(batch_id=batch.id, withdrawal_id=withdrawal.id, amount=withdrawal.amount,
                                       end_to_end_id=f"EDX-W{withdrawal.id}", status=PayoutLineStatus.PENDING.value))
        total += withdrawal.amount
        count += 1
    if not count:
        db.session.rollback()
        raise DomainError("No approved withdrawals are waiting for a payout batch.")
    batch.total, batch.line_count = total, count
    commit()
    return batch


def get_batch(batch_id: int) -> PayoutBatch:
    return found(db.session.get(PayoutBatch, batch_id), "No such payout batch.")


def batches_query() -> Select:
    return select(PayoutBatch).order_by(PayoutBatch.id.desc())


def batch_xml(batch_id: int, execution_date: date | None = None) -> bytes:
    """The batch's pain.001 file: every line not failed. The users' IBANs and names are
    decrypted here, for the file, and nowhere else."""
    batch = get_batch(batch_id)
    if batch.status == PayoutBatchStatus.FAILED.value:
        raise DomainError("This batch failed: there is nothing to send to the bank.")
    debtor = debtor_account()
    transfer = SepaTransfer({"name": debtor.name, "IBAN": debtor.iban, "BIC": debtor.bic, "batch": True,
                             "currency": "EUR"}, schema=SCHEMA)
    # The message id is the batch's own, so a second upload of the same file is refused by
    # the bank's duplicate check (sepaxml draws a random one).
    transfer._xml.find("CstmrCdtTrfInitn/GrpHdr/MsgId").text = batch.message_id  # noqa: SLF001
    lines = [line for line in batch.lines if line.status != PayoutLineStatus.FAILED.value]
    if not lines:
        raise DomainError("Every line of this batch failed: there is nothing to send to the bank.")
    withdrawals = {w.id: w for w in db.session.scalars(
        select(Withdrawal).where(Withdrawal.id.in_([line.withdrawal_id for line in lines])))}
    for line in lines:
        withdrawal = withdrawals[line.withdrawal_id]
        transfer.add_payment({
            "name": decrypt_text(withdrawal.holder_encrypted),
            "IBAN": decrypt_text(withdrawal.iban_encrypted),
            "amount": to_cents(line.amount),
            "execution_date": execution_date or utcnow().date(),
            "description": f"{current_app.config['SITE_NAME']} withdrawal {withdrawal.id}",
            "endtoend_id": line.end_to_end_id,
        })
    return transfer.export(validate=True)


_REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ./:_-]{0,62}[A-Za-z0-9]?$")


def mark_batch_sent(batch_id: int, admin_id: int, bank_reference: str) -> PayoutBatch:
    """The bank accepted the file: every pending line is paid and its user emailed."""
    reference = " ".join((bank_reference or "").split())
    if not reference:
        raise DomainError("Enter the bank's reference for the upload.")
    if not _REFERENCE.match(reference):
        raise DomainError("The bank's reference is 1 to 64 letters, digits, spaces and . / : _ -")
    if not transition(PayoutBatch, batch_id, [PayoutBatchStatus.OPEN], PayoutBatchStatus.SENT,
                      bank_reference=reference, closed_by=admin_id, closed_at=utcnow()):
        refuse(PayoutBatch, batch_id, "payout batch", "marked sent")
    for line in _lines(batch_id):
        if transition(PayoutBatchLine, line.id, [PayoutLineStatus.PENDING], PayoutLineStatus.PAID):
            mark_paid(line.withdrawal_id, transfer_note=f"SEPA transfer {line.end_to_end_id}")
    commit()
    return get_batch(batch_id)


def fail_batch(batch_id: int, admin_id: int, reason: str) -> PayoutBatch:
    """The bank refused the whole file (or returned every transfer): all its withdrawals
    are given back, each once."""
    reason = _reason(reason)
    if not transition(PayoutBatch, batch_id, [PayoutBatchStatus.OPEN, PayoutBatchStatus.SENT],
                      PayoutBatchStatus.FAILED, failure_reason=reason, closed_by=admin_id, closed_at=utcnow()):
        refuse(PayoutBatch, batch_id, "payout batch", "marked failed")
    for line in _lines(batch_id):
        _fail_line(line, reason)
    commit()
    return get_batch(batch_id)


def fail_batch_line(batch_id: int, line_id: int, reason: str) -> PayoutBatchLine:
    """One transfer the bank refused or returned: that withdrawal alone is given back."""
    reason = _reason(reason)
    line = db.session.get(PayoutBatchLine, line_id)
    if line is None or line.batch_id != batch_id:
        raise DomainError("No such line in this batch.")
    if get_batch(batch_id).status == PayoutBatchStatus.FAILED.value or not _fail_line(line, reason):
        refuse(PayoutBatchLine, line_id, "batch line", "marked failed")
    commit()
    return db.session.get(PayoutBatchLine, line_id)


def _fail_line(line: PayoutBatchLine, reason: str) -> bool:
    if transition(PayoutBatchLine, line.id, [PayoutLineStatus.PENDING], PayoutLineStatus.FAILED,
                  failure_reason=reason):
        give_back(line.withdrawal_id, (WithdrawalStatus.PROCESSING,), WithdrawalStatus.FAILED, reason)
        return True
    if transition(PayoutBatchLine, line.id, [PayoutLineStatus.PAID], PayoutLineStatus.FAILED, failure_reason=reason):
        return_paid(line.withdrawal_id, reason)
        return True
    return False


def _lines(batch_id: int) -> list[PayoutBatchLine]:
    return list(db.session.scalars(select(PayoutBatchLine).where(PayoutBatchLine.batch_id == batch_id)
                                   .order_by(PayoutBatchLine.id)))


def _reason(reason: str) -> str:
    reason = " ".join((reason or "").split())
    if not reason:
        raise DomainError("Give the reason the bank gave: the users are told.")
    if len(reason) > 255:
        raise DomainError("Keep the reason under 255 characters.")
    return reason
