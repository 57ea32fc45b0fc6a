"""Platform statistics: read-only aggregate queries over the features' tables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from ...auth.models import User
from ...extensions import db
from ...types import utcnow
from .users import feature_installed

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class TradeStats:
    total: int
    open: int
    settled: int
    wins: int
    win_rate: Decimal | None  # percent of settled trades the trader won; None before any
    house_pnl: Decimal  # stakes kept minus payouts made, on settled trades


@dataclass(frozen=True)
class MoneyStats:
    deposits: Decimal
    withdrawals: Decimal
    pending_withdrawals: int  # waiting for an admin


@dataclass(frozen=True)
class PlatformStats:
    users_total: int
    users_active_24h: int
    users_deactivated: int
    trades: TradeStats | None  # None when rise/fall is not installed
    money: MoneyStats | None  # None when the wallet is not installed


def platform_stats() -> PlatformStats:
    since = utcnow() - timedelta(hours=24)
    users_total = db.session.scalar(select(func.count()).select_from(User))
    active_24h = db.session.scalar(select(func.count()).select_from(User).where(User.last_login_at >= since))
    deactivated = db.session.scalar(select(func.count()).select_from(User).where(User.active.is_(False)))
    return PlatformStats(
        users_total=users_total,
        users_active_24h=active_24h,
        users_deactivated=deactivated,
        trades=trade_stats() if feature_installed("binary") else None,
        money=money_stats() if feature_installed("wallet") else None,
    )


def trade_stats() -> TradeStats:
    from ...binary.models import Trade, TradeResult, TradeStatus

    # One pass over the trades: counts and sums per (status, result).
    groups = db.session.execute(
        select(Trade.status, Trade.result, func.count(), func.sum(Trade.stake), func.sum(Trade.payout))
        .group_by(Trade.status, Trade.result)
    ).all()
    settled_groups = [g for g in groups if g[0] == TradeStatus.SETTLED.value]
    settled = sum(g[2] for g in settled_groups)
    wins = sum(g[2] for g in settled_groups if g[1] == TradeResult.WIN.value)
    stakes = sum((g[3] or ZERO for g in settled_groups), ZERO)
    payouts = sum((g[4] or ZERO for g in settled_groups), ZERO)
    return TradeStats(
        total=sum(g[2] for g in groups),
        open=sum(g[2] for g in groups if g[0] == TradeStatus.OPEN.value),
        settled=settled,
        wins=wins,
        win_rate=(Decimal(wins) * 100 / settled).quantize(Decimal("0.01")) if settled else None,
        house_pnl=stakes - payouts,
    )


def volume_per_day(days: int = 30) -> list[dict]:
    """Rise/fall stake volume per UTC day for the last `days` days, zero-filled, oldest
    first, in the shape a Lightweight Charts histogram takes ({time, value})."""
    if not feature_installed("binary"):
        return []
    from ...binary.models import Trade

    today = utcnow().date()
    first = today - timedelta(days=days - 1)
    day = func.date(Trade.opened_at)
    rows = db.session.execute(
        select(day, func.sum(Trade.stake), func.count())
        .where(Trade.opened_at >= datetime.combine(first, time.min, UTC))
        .group_by(day)
    ).all()
    # SQLite gives the date as text, PostgreSQL as a date.
    totals = {(d if isinstance(d, date) else date.fromisoformat(str(d)[:10])): (volume, count) for d, volume, count in rows}
    series = []
    for offset in range(days):
        current = first + timedelta(days=offset)
        volume, count = totals.get(current, (ZERO, 0))
        series.append({"time": current.isoformat(), "value": str(volume or ZERO), "trades": count})
    return series


def money_stats() -> MoneyStats:
    from ...wallet.models import Deposit, DepositStatus, Withdrawal, WithdrawalStatus

    deposits = db.session.scalar(select(func.sum(Deposit.amount)).where(Deposit.status == DepositStatus.COMPLETED.value))
    withdrawals = db.session.scalar(
        select(func.sum(Withdrawal.amount)).where(Withdrawal.status == WithdrawalStatus.PAID.value))
    pending = db.session.scalar(select(func.count()).select_from(Withdrawal).where(
        Withdrawal.status == WithdrawalStatus.REQUESTED.value))
    return MoneyStats(deposits=deposits or ZERO, withdrawals=withdrawals or ZERO, pending_withdrawals=pending)
