"""Competition tables: the competition with its locked terms and status, and each
participant's row, which is also their competition account (points, never credits: the
credits paid in are in the competition's prize-pool platform account, see ledger.py)."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..types import Money, Percent, UTCDateTime, utcnow

ZERO = Decimal("0.00")
DEFAULT_CAPITAL = Decimal("10000.00")
# ESMA's 2018 retail limits: 30:1 major FX pairs, 20:1 other FX and gold, 10:1 indices
# (our synthetic indices). See leverage_class() for which market is which.
DEFAULT_LEVERAGE = {"FX_MAJOR": 30, "FX_OTHER": 20, "SYNTHETIC": 10}


class CompetitionStatus(enum.StrEnum):
    DRAFT = "DRAFT"  # being written; invisible to traders
    SCHEDULED = "SCHEDULED"  # published; registration follows its window
    LIVE = "LIVE"
    ENDED = "ENDED"  # trading over, standings final, prizes not yet paid
    SETTLED = "SETTLED"  # prizes paid, pool empty
    CANCELLED = "CANCELLED"  # every fee refunded, pool empty


class CompetitionKind(enum.StrEnum):
    CFD = "CFD"
    RISE_FALL = "RISE_FALL"


class Repeats(enum.StrEnum):
    """A recurring competition: when it starts, its next instance is scheduled (service.schedule_next)."""
    DAILY = "DAILY"
    WEEKLY = "WEEKLY"


class ParticipantStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"
    LEFT = "LEFT"  # left before the start, fee refunded


class Competition(db.Model):
    __tablename__ = "competitions"
    # Scale-free checks only (money is stored scaled on SQLite, see types.py).
    __table_args__ = (
        CheckConstraint("entry_fee >= 0", name="ck_competitions_entry_fee"),
        CheckConstraint("starting_capital > 0", name="ck_competitions_starting_capital"),
        CheckConstraint("min_participants >= 1 AND max_participants >= min_participants",
                        name="ck_competitions_participants"),
        CheckConstraint("seats_taken >= 0 AND seats_taken <= max_participants", name="ck_competitions_seats"),
        CheckConstraint("end_at > start_at", name="ck_competitions_times"),
        CheckConstraint("guaranteed_pool >= 0 AND rebuy_fee >= 0", name="ck_competitions_amounts"),
        CheckConstraint("repeats IS NULL OR repeats IN ('DAILY', 'WEEKLY')", name="ck_competitions_repeats"),
        # The next instance of a recurring competition is created exactly once.
        UniqueConstraint("previous_id", name="uq_competitions_previous_id"),
        Index("ix_competitions_status_start_at", "status", "start_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(12), default=CompetitionKind.CFD.value)
    status: Mapped[str] = mapped_column(String(12), default=CompetitionStatus.DRAFT.value)

    entry_fee: Mapped[Decimal] = mapped_column(Money(), default=ZERO)  # credits
    starting_capital: Mapped[Decimal] = mapped_column(Money(), default=DEFAULT_CAPITAL)  # USD points
    min_participants: Mapped[int] = mapped_column(default=2)
    max_participants: Mapped[int] = mapped_column(default=100)
    seats_taken: Mapped[int] = mapped_column(default=0)
    has_had_entrants: Mapped[bool] = mapped_column(default=False)  # set by the first join, never cleared

    registration_opens_at: Mapped[datetime] = mapped_column(UTCDateTime())
    registration_closes_at: Mapped[datetime] = mapped_column(UTCDateTime())
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime] = mapped_column(UTCDateTime())

    # Symbols ("OTC_EUR_USD") and market types ("SYNTHETIC"); empty = every active market.
    allowed_markets: Mapped[list] = mapped_column(JSON, default=list)
    max_leverage: Mapped[dict] = mapped_column(JSON, default=lambda: dict(DEFAULT_LEVERAGE))
    stop_out_percent: Mapped[Decimal] = mapped_column(Percent(), default=Decimal("50.00"))
    margin_call_percent: Mapped[Decimal] = mapped_column(Percent(), default=Decimal("100.00"))

    platform_fee_percent: Mapped[Decimal] = mapped_column(Percent(), default=ZERO)
    # Percent of the net pool per rank, as strings: prize_table[0] is rank 1's.
    prize_table: Mapped[list] = mapped_column(JSON, default=list)
    guaranteed_pool: Mapped[Decimal] = mapped_column(Money(), default=ZERO)  # 0 = none
    prize_requires_trade: Mapped[bool] = mapped_column(default=True)

    rebuys_allowed: Mapped[bool] = mapped_column(default=False)
    max_rebuys: Mapped[int] = mapped_column(default=0)
    rebuy_fee: Mapped[Decimal] = mapped_column(Money(), default=ZERO)

    repeats: Mapped[str | None] = mapped_column(String(8))  # None, DAILY or WEEKLY (a term)
    # The recurring competition this one is the next instance of (None: created by an admin).
    previous_id: Mapped[int | None] = mapped_column(
        ForeignKey("competitions.id", name="fk_competitions_previous_id", ondelete="SET NULL"))

    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # set once, by a conditional UPDATE, when the "starts in 15 minutes" emails are queued
    reminder_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancel_reason: Mapped[str | None] = mapped_column(String(255))

    # Written by the settlement, for the results page.
    pool_at_settlement: Mapped[Decimal | None] = mapped_column(Money())
    platform_fee_amount: Mapped[Decimal | None] = mapped_column(Money())
    net_pool: Mapped[Decimal | None] = mapped_column(Money())
    guarantee_topup: Mapped[Decimal | None] = mapped_column(Money())
    prizes_paid: Mapped[Decimal | None] = mapped_column(Money())
    leftover_to_platform: Mapped[Decimal | None] = mapped_column(Money())

    @property
    def pool_reference(self) -> str:
        return pool_reference(self.id)

    @property
    def terms_locked(self) -> bool:
        """Once the first entrant has joined, only the description may change."""
        return self.has_had_entrants or self.status not in (CompetitionStatus.DRAFT, CompetitionStatus.SCHEDULED)

    def __repr__(self) -> str:
        return f"<Competition {self.id} {self.slug} {self.status}>"


def pool_reference(competition_id: int) -> str:
    return f"competition:{competition_id}"


class Participant(db.Model):
    """A trader in a competition, and their competition account."""

    __tablename__ = "competition_participants"
    __table_args__ = (
        UniqueConstraint("competition_id", "user_id", name="uq_competition_participants_competition_user"),
        CheckConstraint("entry_number >= 1 AND rebuys >= 0 AND trades_count >= 0",
                        name="ck_competition_participants_counts"),
        Index("ix_competition_participants_competition_equity", "competition_id", "equity"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    competition_id: Mapped[int] = mapped_column(ForeignKey("competitions.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(8), default=ParticipantStatus.ACTIVE.value)
    entry_number: Mapped[int] = mapped_column(default=1)  # 2 after leaving and joining again
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    fees_paid: Mapped[Decimal] = mapped_column(Money(), default=ZERO)  # entry + rebuys, in the pool now

    # The competition account (points in the account currency, never credits).
    cash: Mapped[Decimal] = mapped_column(Money())
    equity: Mapped[Decimal] = mapped_column(Money())
    trades_count: Mapped[int] = mapped_column(default=0)
    rebuys: Mapped[int] = mapped_column(default=0)

    disqualified: Mapped[bool] = mapped_column(default=False)
    disqualify_reason: Mapped[str | None] = mapped_column(String(500))
    disqualified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    # Final standings (at the end) and the prize (at settlement).
    final_equity: Mapped[Decimal | None] = mapped_column(Money())
    final_rank: Mapped[int | None] = mapped_column()  # None: not ranked for prizes (see prizes.py)
    prize: Mapped[Decimal | None] = mapped_column(Money())

    competition = relationship(Competition)
    user = relationship("User")
