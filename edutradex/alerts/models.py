"""Price alerts, their fires (the notifications) and the alert engine's watermark."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..types import Price, UTCDateTime, utcnow


class AlertKind(enum.StrEnum):
    ABOVE = "ABOVE"  # the price reaches the level from below (price >= level)
    BELOW = "BELOW"  # the price reaches the level from above (price <= level)
    CROSSING = "CROSSING"  # the price crosses the level, whichever side it is on now


class AlertStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"  # in the engine's book
    FIRED = "FIRED"  # a once-alert that fired
    EXPIRED = "EXPIRED"
    DELETED = "DELETED"  # by its owner; its fires stay in the notifications


class PriceAlert(db.Model):
    """One alert on the mid price of a market. ``watching`` is the condition the engine waits
    for next: ">=" / "<=" (reaching the level) or ">" / "<" (strictly back across it, an
    "every time" alert's re-arm or a crossing alert's way back); see service.py."""

    __tablename__ = "price_alerts"
    __table_args__ = (Index("ix_price_alerts_user_status", "user_id", "status"),
                      Index("ix_price_alerts_status_symbol", "status", "symbol"))

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    symbol: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(8))
    level: Mapped[Decimal] = mapped_column(Price())
    repeat: Mapped[bool] = mapped_column(default=False)  # "every time" (else once)
    watching: Mapped[str] = mapped_column(String(2))
    status: Mapped[str] = mapped_column(String(8), default=AlertStatus.ACTIVE.value)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_price: Mapped[Decimal] = mapped_column(Price())  # the mid when it was set
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    fire_count: Mapped[int] = mapped_column(default=0)
    last_tick_id: Mapped[int | None] = mapped_column(BigInteger)  # the tick of its last change of state
    version: Mapped[int] = mapped_column(default=1)  # moves with every change: the engine's reconcile


class AlertFire(db.Model):
    """One trigger of an alert at one recorded tick: the notification the owner reads, and
    the key that makes the fire, its live message and its email happen once."""

    __tablename__ = "alert_fires"
    __table_args__ = (UniqueConstraint("alert_id", "tick_id", name="uq_alert_fires_alert_tick"),
                      Index("ix_alert_fires_user_read", "user_id", "read_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("price_alerts.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    symbol: Mapped[str] = mapped_column(String(32))
    tick_id: Mapped[int] = mapped_column(BigInteger)
    tick_ts_ms: Mapped[int] = mapped_column(BigInteger)
    price: Mapped[Decimal] = mapped_column(Price())  # the tick's mid
    message: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    emailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # taken by its email job


class AlertEngineState(db.Model):
    """Per symbol: the last recorded tick the alert engine has fully processed."""

    __tablename__ = "alert_engine_state"

    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_tick_id: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
