"""A rise/fall trade: what was agreed at placement (frozen) and the proof of its settlement."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..types import Money, Percent, Price, UTCDateTime

BigId = BigInteger().with_variant(Integer(), "sqlite")


class Direction(enum.StrEnum):
    UP = "UP"
    DOWN = "DOWN"


class TradeStatus(enum.StrEnum):
    OPEN = "OPEN"
    SETTLED = "SETTLED"
    CANCELLED = "CANCELLED"  # by a demo-balance reset


class TradeResult(enum.StrEnum):
    WIN = "WIN"
    LOSS = "LOSS"
    TIE = "TIE"


class SettlementRule(enum.StrEnum):
    COMPARE = "COMPARE"  # exit tick's mid compared with the entry mid
    NO_NEW_TICK = "NO_NEW_TICK"  # no tick recorded after entry up to expiry: TIE, stake refunded
    PRICE_GAP = "PRICE_GAP"  # the authority lost ticks before the expiry (a recorded gap): TIE, stake refunded
    RESET = "RESET"  # cancelled by a demo-balance reset


class Trade(db.Model):
    __tablename__ = "trades"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key", name="uq_trades_user_idempotency_key"),
        Index("ix_trades_status_symbol_expires", "status", "symbol", "expires_ms"),
        Index("ix_trades_user_opened", "user_id", "opened_at"),
        Index("ix_trades_participant_status", "participant_id", "status"),
        CheckConstraint("stake > 0", name="ck_trades_stake_positive"),
        CheckConstraint("direction IN ('UP', 'DOWN')", name="ck_trades_direction"),
        CheckConstraint("status IN ('OPEN', 'SETTLED', 'CANCELLED')", name="ck_trades_status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # The account the stake came from and the payout goes to: None = the user's demo
    # balance; otherwise their competition account (a RISE_FALL competition's participant).
    participant_id: Mapped[int | None] = mapped_column(
        ForeignKey("competition_participants.id", name="fk_trades_participant_id", ondelete="CASCADE"))
    symbol: Mapped[str] = mapped_column(String(32))
    direction: Mapped[str] = mapped_column(String(4))
    stake: Mapped[Decimal] = mapped_column(Money())
    payout_percent: Mapped[Decimal] = mapped_column(Percent())  # frozen at placement
    potential_payout: Mapped[Decimal] = mapped_column(Money())  # stake * (1 + payout%/100), half-even to cents
    entry_price: Mapped[Decimal] = mapped_column(Price())  # the quote's mid
    entry_bid: Mapped[Decimal] = mapped_column(Price())
    entry_ask: Mapped[Decimal] = mapped_column(Price())
    entry_tick_id: Mapped[int | None] = mapped_column(BigInteger)
    entry_ts_ms: Mapped[int] = mapped_column(BigInteger)
    duration_seconds: Mapped[int] = mapped_column(Integer)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_ms: Mapped[int] = mapped_column(BigInteger)  # exact, for comparing with tick ts_ms
    status: Mapped[str] = mapped_column(String(10), default=TradeStatus.OPEN.value)
    result: Mapped[str | None] = mapped_column(String(4))
    rule: Mapped[str | None] = mapped_column(String(12))
    exit_price: Mapped[Decimal | None] = mapped_column(Price())
    exit_tick_id: Mapped[int | None] = mapped_column(BigInteger)
    exit_ts_ms: Mapped[int | None] = mapped_column(BigInteger)
    payout: Mapped[Decimal | None] = mapped_column(Money())  # credited at settlement (0 on a loss)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    idempotency_key: Mapped[str] = mapped_column(String(64))

    @property
    def is_open(self) -> bool:
        return self.status == TradeStatus.OPEN.value

    @property
    def profit(self) -> Decimal | None:
        """Net result for the trader: payout minus stake (a cancelled trade counts as 0)."""
        if self.status != TradeStatus.SETTLED.value or self.payout is None:
            return None
        return self.payout - self.stake

    def __repr__(self) -> str:
        return f"<Trade {self.id} {self.symbol} {self.direction} {self.stake} {self.status}>"
