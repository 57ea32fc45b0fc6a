"""Fair-play tables (issue #13): the devices each participant was seen on, and the flags a
scan raises for an admin to review (fair_play.py). A flag is evidence, never a punishment:
only an admin acts on it."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..types import UTCDateTime, utcnow


class FlagKind(enum.StrEnum):
    SHARED_DEVICE = "SHARED_DEVICE"  # several accounts of one competition on one browser
    SHARED_IDENTITY = "SHARED_IDENTITY"  # several accounts with one KYC identity
    MIRRORED_TRADES = "MIRRORED_TRADES"  # two accounts repeatedly opening opposite positions at once
    STALE_QUOTE_PROFIT = "STALE_QUOTE_PROFIT"  # profit mostly from trades on an old quote


class FlagStatus(enum.StrEnum):
    OPEN = "OPEN"  # waiting for an admin
    DISMISSED = "DISMISSED"  # reviewed: nothing wrong (the note says why)
    ACTED = "ACTED"  # an admin disqualified someone from it


class ParticipantDevice(db.Model):
    """A device (the opaque device-id cookie, devices.py) a participant joined or traded
    from: one row per (competition, user, device), its first and last sighting."""

    __tablename__ = "competition_devices"
    __table_args__ = (
        UniqueConstraint("competition_id", "user_id", "device_id", name="uq_competition_devices_seen"),
        Index("ix_competition_devices_competition_device", "competition_id", "device_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    competition_id: Mapped[int] = mapped_column(ForeignKey("competitions.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    device_id: Mapped[str] = mapped_column(String(64))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CompetitionFlag(db.Model):
    """One suspicion about some participants of a competition, with its evidence. Unique per
    (competition, kind, participants): a re-scan refreshes an open flag's evidence instead of
    adding a second one, and leaves a decided flag as the admin left it."""

    __tablename__ = "competition_flags"
    __table_args__ = (
        UniqueConstraint("competition_id", "kind", "participants_key", name="uq_competition_flags_key"),
        Index("ix_competition_flags_competition_status", "competition_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    competition_id: Mapped[int] = mapped_column(ForeignKey("competitions.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(24))
    participants_key: Mapped[str] = mapped_column(String(255))  # the sorted user ids, "12,40"
    user_ids: Mapped[list] = mapped_column(JSON)
    evidence: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(10), default=FlagStatus.OPEN.value)
    note: Mapped[str | None] = mapped_column(String(500))  # the admin's, with the decision
    # what admins did from this flag: [{"action": "disqualify", "user_id": .., "by": .., "at": ..}]
    actions: Mapped[list] = mapped_column(JSON, default=list)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
