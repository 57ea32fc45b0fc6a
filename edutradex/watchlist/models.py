"""A user's watchlist: the symbols they follow on the dashboard, in their own order."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..types import UTCDateTime, utcnow


class WatchlistEntry(db.Model):
    __tablename__ = "watchlist_entries"
    __table_args__ = (
        UniqueConstraint("user_id", "symbol", name="uq_watchlist_entries_user_symbol"),
        Index("ix_watchlist_entries_user_position", "user_id", "position"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    symbol: Mapped[str] = mapped_column(String(32), ForeignKey("markets.symbol", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column()  # display order, ascending
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
