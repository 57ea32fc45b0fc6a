"""A trader's note and tags on one of their trades: a rise/fall trade (demo or a
competition's) or a CFD position. The trade tables stay untouched; the note points at them."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..types import UTCDateTime, utcnow


class TradeKind(enum.StrEnum):
    RISE_FALL = "RISE_FALL"  # binary.models.Trade
    CFD = "CFD"  # competitions.models.CfdPosition


class JournalNote(db.Model):
    __tablename__ = "journal_notes"
    __table_args__ = (
        UniqueConstraint("trade_kind", "trade_id", name="uq_journal_notes_trade"),
        CheckConstraint("trade_kind IN ('RISE_FALL', 'CFD')", name="ck_journal_notes_kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    trade_kind: Mapped[str] = mapped_column(String(10))
    trade_id: Mapped[int] = mapped_column(BigInteger)
    note: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list] = mapped_column(JSON, default=list)  # normalised: lower-case, unique, sorted
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
