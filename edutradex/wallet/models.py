"""Wallet tables. Every change of a balance (wallet or platform account) is a ledger
entry written in the same transaction (see ledger.py)."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..types import Money, UTCDateTime, utcnow

ZERO = Decimal("0.00")


class EntryType(enum.StrEnum):
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"  # wallet -> pending withdrawals
    WITHDRAWAL_REVERSAL = "withdrawal_reversal"  # pending withdrawals -> wallet
    PAYOUT = "payout"  # pending withdrawals -> paid out of the platform
    PAYOUT_RETURN = "payout_return"  # the bank returned a paid-out transfer -> pending withdrawals
    COMPETITION_ENTRY = "competition_entry"
    COMPETITION_REFUND = "competition_refund"
    COMPETITION_PRIZE = "competition_prize"
    PLATFORM_FEE = "platform_fee"  # into platform revenue: a competition's fee and leftover cents
    COMPETITION_GUARANTEE = "competition_guarantee"  # platform revenue -> a prize pool it guaranteed
    ADJUSTMENT = "adjustment"


class PlatformAccountKind(enum.StrEnum):
    PENDING_WITHDRAWALS = "pending_withdrawals"
    PRIZE_POOL = "prize_pool"  # one per competition: reference "competition:<id>"
    PLATFORM_REVENUE = "platform_revenue"


class Wallet(db.Model):
    __tablename__ = "wallets"
    __table_args__ = (
        CheckConstraint("balance >= 0", name="ck_wallets_balance_non_negative"),
        CheckConstraint("withdrawable_balance >= 0 AND withdrawable_balance <= balance",
                        name="ck_wallets_withdrawable_within_balance"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    balance: Mapped[Decimal] = mapped_column(Money(), default=ZERO)
    # The part of the balance that may be paid out: credits bought through the demo payment
    # provider never raise it, and spending takes those credits first (see ledger.py).
    withdrawable_balance: Mapped[Decimal] = mapped_column(Money(), default=ZERO, server_default="0")
    # Running totals, kept by the posting function from the entries' types.
    total_deposited: Mapped[Decimal] = mapped_column(Money(), default=ZERO)
    total_withdrawn: Mapped[Decimal] = mapped_column(Money(), default=ZERO)  # net of reversals
    total_spent_competitions: Mapped[Decimal] = mapped_column(Money(), default=ZERO)  # net of refunds
    total_won_competitions: Mapped[Decimal] = mapped_column(Money(), default=ZERO)
    withdrawals_enabled: Mapped[bool] = mapped_column(default=True)
    stripe_customer_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    user = relationship("User")


class PlatformAccount(db.Model):
    """The platform's side of every internal movement, so the whole ledger balances."""

    __tablename__ = "platform_accounts"
    __table_args__ = (
        UniqueConstraint("kind", "reference", name="uq_platform_accounts_kind_reference"),
        CheckConstraint("balance >= 0", name="ck_platform_accounts_balance_non_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str] = mapped_column(String(64), default="")
    balance: Mapped[Decimal] = mapped_column(Money(), default=ZERO)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LedgerEntry(db.Model):
    """One leg of a movement on one account. A movement has a debit leg, a credit leg, or
    both (an internal transfer); the outside world (card payments, bank payouts, admin
    adjustments) has no account. ``amount`` is signed: positive credits the account."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        UniqueConstraint("idempotency_key", "leg", name="uq_ledger_entries_idempotency_key_leg"),
        CheckConstraint("(wallet_id IS NULL) <> (platform_account_id IS NULL)", name="ck_ledger_entries_one_account"),
        CheckConstraint("leg IN ('debit', 'credit')", name="ck_ledger_entries_leg"),
        CheckConstraint("amount <> 0", name="ck_ledger_entries_amount_non_zero"),
        Index("ix_ledger_entries_wallet_id_id", "wallet_id", "id"),
        Index("ix_ledger_entries_platform_account_id_id", "platform_account_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    wallet_id: Mapped[int | None] = mapped_column(ForeignKey("wallets.id"))
    platform_account_id: Mapped[int | None] = mapped_column(ForeignKey("platform_accounts.id"))
    entry_type: Mapped[str] = mapped_column(String(32))
    leg: Mapped[str] = mapped_column(String(6))
    amount: Mapped[Decimal] = mapped_column(Money())
    balance_before: Mapped[Decimal] = mapped_column(Money())
    balance_after: Mapped[Decimal] = mapped_column(Money())
    # "external", "wallet:<id>" or "platform:<kind>:<reference>": where the money went or came from.
    counterparty: Mapped[str] = mapped_column(String(100))
    reference: Mapped[str] = mapped_column(String(100))
    idempotency_key: Mapped[str] = mapped_column(String(150))
    reason: Mapped[str | None] = mapped_column(Text)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DepositStatus(enum.StrEnum):
    PENDING = "pending"  # created, waiting for the card
    PROCESSING = "processing"  # card accepted, waiting for the provider's confirmation
    COMPLETED = "completed"
    FAILED = "failed"


class Deposit(db.Model):
    __tablename__ = "deposits"
    __table_args__ = (CheckConstraint("amount > 0", name="ck_deposits_amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money())
    currency: Mapped[str] = mapped_column(String(3), default="eur")
    provider: Mapped[str] = mapped_column(String(16))
    provider_ref: Mapped[str | None] = mapped_column(String(64), unique=True)
    client_secret: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default=DepositStatus.PENDING.value)
    failure_message: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WithdrawalStatus(enum.StrEnum):
    REQUESTED = "requested"  # credits held in pending withdrawals, waiting for an admin
    APPROVED = "approved"  # waiting for a SEPA batch (or for the payout job of a provider with an API)
    PROCESSING = "processing"  # in a SEPA batch not yet sent (or at the provider, waiting for its result)
    PAID = "paid"  # the batch was sent to the bank (or the provider paid)
    FAILED = "failed"  # payout failed or returned: credits given back
    REJECTED = "rejected"  # an admin refused: credits given back
    CANCELED = "canceled"  # the user withdrew the request before review: credits given back


class Withdrawal(db.Model):
    __tablename__ = "withdrawals"
    __table_args__ = (CheckConstraint("amount > 0", name="ck_withdrawals_amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money())
    currency: Mapped[str] = mapped_column(String(3), default="eur")
    status: Mapped[str] = mapped_column(String(16), default=WithdrawalStatus.REQUESTED.value, index=True)
    # The bank details at the time of the request (encrypted), and their masked form.
    iban_encrypted: Mapped[str] = mapped_column(Text)
    holder_encrypted: Mapped[str] = mapped_column(Text)
    iban_masked: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str | None] = mapped_column(String(16))
    provider_ref: Mapped[str | None] = mapped_column(String(64), unique=True)
    failure_reason: Mapped[str | None] = mapped_column(String(255))
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Payout attempts at a provider with an API (see withdrawals.run_payout): the reconciler
    # retries an approved withdrawal once next_attempt_at has passed.
    payout_attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(255))


class PayoutBatchStatus(enum.StrEnum):
    OPEN = "open"  # created; its pain.001 file is downloaded and uploaded to the bank
    SENT = "sent"  # the bank accepted the file (its reference recorded): the withdrawals are paid
    FAILED = "failed"  # the bank refused the file: every withdrawal in it is given back


class PayoutBatch(db.Model):
    """A SEPA credit-transfer file (pain.001): the approved withdrawals an admin pays in one
    upload to the platform's bank."""

    __tablename__ = "payout_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default=PayoutBatchStatus.OPEN.value, index=True)
    message_id: Mapped[str] = mapped_column(String(35), unique=True)  # the file's MsgId: banks refuse a repeat
    total: Mapped[Decimal] = mapped_column(Money())
    line_count: Mapped[int] = mapped_column()
    bank_reference: Mapped[str | None] = mapped_column(String(64))
    failure_reason: Mapped[str | None] = mapped_column(String(255))
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    closed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    lines = relationship("PayoutBatchLine", order_by="PayoutBatchLine.id", back_populates="batch")


class PayoutLineStatus(enum.StrEnum):
    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"  # refused or returned by the bank: the withdrawal is given back


class PayoutBatchLine(db.Model):
    __tablename__ = "payout_batch_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("payout_batches.id"), index=True)
    withdrawal_id: Mapped[int] = mapped_column(ForeignKey("withdrawals.id"), unique=True)
    amount: Mapped[Decimal] = mapped_column(Money())
    end_to_end_id: Mapped[str] = mapped_column(String(35), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=PayoutLineStatus.PENDING.value)
    failure_reason: Mapped[str | None] = mapped_column(String(255))

    batch = relationship("PayoutBatch", back_populates="lines")


class BankAccount(db.Model):
    __tablename__ = "bank_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    iban_encrypted: Mapped[str] = mapped_column(Text)
    holder_encrypted: Mapped[str] = mapped_column(Text)
    iban_masked: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class KycStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class KycSubmission(db.Model):
    """Identity details, encrypted as one JSON document. The latest submission is the
    user's KYC status."""

    __tablename__ = "kyc_submissions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=KycStatus.PENDING.value, index=True)
    data_encrypted: Mapped[str] = mapped_column(Text)
    # Keyed hashes of who the details name (crypto.identity_fingerprints), computed when they
    # are submitted, so fair play can find two accounts of one person without decrypting.
    document_fingerprint: Mapped[str | None] = mapped_column(String(64), index=True)  # country + ID number
    person_fingerprint: Mapped[str | None] = mapped_column(String(64), index=True)  # name + date of birth
    reason: Mapped[str | None] = mapped_column(String(500))
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class StripeEvent(db.Model):
    """Webhook events already handled: a replayed event id changes nothing."""

    __tablename__ = "stripe_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(255), unique=True)
    event_type: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
