"""Competition tables: the competition with its locked terms and status, and each
participant's row, which is also their competition account (points, never credits: the
credits paid in are in the competition's prize-pool platform account, see ledger.py)."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..types import Lots, Money, Percent, Price, UTCDateTime, utcnow

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

    # Minutes before the end during which the public board shows the snapshot taken when
    # the freeze began (0 = no freeze); each trader still sees their own live equity.
    freeze_minutes: Mapped[int] = mapped_column(default=0)
    frozen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # set once, with the snapshot

    rebuys_allowed: Mapped[bool] = mapped_column(default=False)
    max_rebuys: Mapped[int] = mapped_column(default=0)
    rebuy_fee: Mapped[Decimal] = mapped_column(Money(), default=ZERO)

    repeats: Mapped[str | None] = mapped_column(String(8))  # None, DAILY or WEEKLY (a term)

    # The rule set (rules.py), every rule off while None. The two floors are on equity, as a
    # percent of the starting capital; a breach disqualifies or only flags (breach_action).
    max_daily_loss_percent: Mapped[Decimal | None] = mapped_column(Percent())
    max_total_loss_percent: Mapped[Decimal | None] = mapped_column(Percent())
    min_trading_days: Mapped[int | None] = mapped_column()
    max_open_positions: Mapped[int | None] = mapped_column()
    max_lots_per_order: Mapped[Decimal | None] = mapped_column(Lots())
    breach_action: Mapped[str] = mapped_column(String(12), default="FLAG")  # BreachAction
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
    cash: Mapped[Decimal] = mapped_column(Money())  # balance: starting capital + realised P&L
    equity: Mapped[Decimal] = mapped_column(Money())  # cash + unrealised P&L, as last valued
    # When the account reached this equity (ms since the epoch): who got there first ranks
    # higher while the contest runs (leaderboard.py). None: not moved since the start.
    equity_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    # The leaderboard's freeze snapshot (leaderboard.py), written once when the freeze begins.
    frozen_equity: Mapped[Decimal | None] = mapped_column(Money())
    frozen_equity_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    # ... and the top-ups then (a rebuy during the freeze must not move the frozen score).
    # None: frozen before these columns existed (the current top-ups stand in).
    frozen_topped_up: Mapped[Decimal | None] = mapped_column(Money())
    frozen_topped_up_cent_seconds: Mapped[int | None] = mapped_column(BigInteger)
    # Money paid in by rebuys, for the time-weighted return (returns.py): the sum of the
    # top-ups (starting capital - equity given up) and of top-up cents x seconds since the start.
    topped_up: Mapped[Decimal] = mapped_column(Money(), default=ZERO)
    topped_up_cent_seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    used_margin: Mapped[Decimal] = mapped_column(Money(), default=ZERO)  # sum of the open positions' margin
    # Bumped by every change to the account's positions: the first statement of an order's
    # transaction, so it takes the row lock (PostgreSQL) / the write lock (SQLite) and two
    # orders cannot spend the same free margin.
    version: Mapped[int] = mapped_column(default=0)
    trades_count: Mapped[int] = mapped_column(default=0)
    rebuys: Mapped[int] = mapped_column(default=0)

    # The daily-loss rule's base (rules.py): the cash at the start of the UTC day
    # `day_start_day` (days since the epoch), written by the first change of the cash on a
    # later day (rules.roll_day); while it names an earlier day the cash has not moved today.
    day_start_balance: Mapped[Decimal | None] = mapped_column(Money())
    day_start_day: Mapped[int | None] = mapped_column()

    disqualified: Mapped[bool] = mapped_column(default=False)
    disqualify_reason: Mapped[str | None] = mapped_column(String(500))
    disqualified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    # Final standings (at the end) and the prize (at settlement).
    final_equity: Mapped[Decimal | None] = mapped_column(Money())
    final_rank: Mapped[int | None] = mapped_column()  # None: not ranked for prizes (see prizes.py)
    prize: Mapped[Decimal | None] = mapped_column(Money())

    competition = relationship(Competition)
    user = relationship("User")


# ---- CFD trading (issue #12): orders, positions, fills, the engine's watermark -----------

class Side(enum.StrEnum):
    BUY = "BUY"  # a long position
    SELL = "SELL"  # a short position


class OrderType(enum.StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"
    STOP = "STOP"


class OrderStatus(enum.StrEnum):
    PENDING = "PENDING"  # a limit or stop order resting in the engine's trigger books
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"  # by the trader, or at the end of the competition
    EXPIRED = "EXPIRED"  # good-till-date passed
    REJECTED = "REJECTED"  # triggered but could not fill (not enough free margin then)


class PositionStatus(enum.StrEnum):
    OPEN = "OPEN"
    CLOSED = "CLOSED"


class CloseReason(enum.StrEnum):
    MANUAL = "MANUAL"
    STOP_LOSS = "STOP_LOSS"
    TAKE_PROFIT = "TAKE_PROFIT"
    STOP_OUT = "STOP_OUT"
    NEGATIVE_BALANCE = "NEGATIVE_BALANCE"  # a gap took equity below 0: everything closed, cash 0
    COMPETITION_END = "COMPETITION_END"
    REBUY = "REBUY"
    RULE_BREACH = "RULE_BREACH"  # a rule set's breach that disqualifies (rules.py)


class CfdOrder(db.Model):
    """An order of a competition account. Market orders fill at once (FILLED or refused);
    limit and stop orders rest PENDING until the engine sees a recorded tick cross them."""

    __tablename__ = "cfd_orders"
    __table_args__ = (
        # a replayed form (same client key) is the same order, never a second one
        UniqueConstraint("participant_id", "client_key", name="uq_cfd_orders_participant_key"),
        CheckConstraint("lots > 0 AND leverage >= 1", name="ck_cfd_orders_lots"),
        CheckConstraint("side IN ('BUY', 'SELL') AND order_type IN ('MARKET', 'LIMIT', 'STOP')",
                        name="ck_cfd_orders_kind"),
        Index("ix_cfd_orders_status_symbol", "status", "symbol"),
        Index("ix_cfd_orders_participant_status", "participant_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    competition_id: Mapped[int] = mapped_column(ForeignKey("competitions.id", ondelete="CASCADE"), index=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("competition_participants.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    client_key: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    order_type: Mapped[str] = mapped_column(String(6))
    lots: Mapped[Decimal] = mapped_column(Lots())
    price: Mapped[Decimal | None] = mapped_column(Price())  # the limit or stop level; None for MARKET
    stop_loss: Mapped[Decimal | None] = mapped_column(Price())
    take_profit: Mapped[Decimal | None] = mapped_column(Price())
    leverage: Mapped[int] = mapped_column()
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # None: good till cancelled / the end
    status: Mapped[str] = mapped_column(String(10), default=OrderStatus.PENDING.value)
    status_reason: Mapped[str | None] = mapped_column(String(255))
    position_id: Mapped[int | None] = mapped_column()  # the position its fill opened
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # filled, cancelled, expired or rejected


class CfdPosition(db.Model):
    """One open (or closed) position: a hedging account, each fill opens its own. The terms
    it was opened under (contract size, quote currency, leverage, margin) are copied in."""

    __tablename__ = "cfd_positions"
    __table_args__ = (
        CheckConstraint("lots >= 0 AND opened_lots > 0 AND leverage >= 1 AND margin >= 0",
                        name="ck_cfd_positions_amounts"),
        Index("ix_cfd_positions_status_symbol", "status", "symbol"),
        Index("ix_cfd_positions_participant_status", "participant_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    competition_id: Mapped[int] = mapped_column(ForeignKey("competitions.id", ondelete="CASCADE"), index=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("competition_participants.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("cfd_orders.id"))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    lots: Mapped[Decimal] = mapped_column(Lots())  # still open (a partial close lowers it)
    opened_lots: Mapped[Decimal] = mapped_column(Lots())
    contract_size: Mapped[Decimal] = mapped_column(Lots())
    quote_currency: Mapped[str] = mapped_column(String(3))
    conversion_symbol: Mapped[str | None] = mapped_column(String(32))
    leverage: Mapped[int] = mapped_column()
    margin: Mapped[Decimal] = mapped_column(Money())  # USD, for the lots still open
    open_price: Mapped[Decimal] = mapped_column(Price())
    open_tick_id: Mapped[int | None] = mapped_column(BigInteger)
    stop_loss: Mapped[Decimal | None] = mapped_column(Price())
    take_profit: Mapped[Decimal | None] = mapped_column(Price())
    status: Mapped[str] = mapped_column(String(6), default=PositionStatus.OPEN.value)
    realized_pnl: Mapped[Decimal] = mapped_column(Money(), default=ZERO)  # USD, over every close of it
    close_price: Mapped[Decimal | None] = mapped_column(Price())  # of the final close
    close_reason: Mapped[str | None] = mapped_column(String(16))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # bumped by every change (SL/TP edit, partial close): the engine's reconcile notices it
    version: Mapped[int] = mapped_column(default=0)


class CfdFill(db.Model):
    """A fill, with its proof: the recorded tick it happened at (id, time, bid, ask) and the
    rule that fired ("buy limit: ask 1.08490 <= limit 1.08500")."""

    __tablename__ = "cfd_fills"
    __table_args__ = (
        CheckConstraint("lots > 0", name="ck_cfd_fills_lots"),
        Index("ix_cfd_fills_participant_id", "participant_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    competition_id: Mapped[int] = mapped_column(ForeignKey("competitions.id", ondelete="CASCADE"), index=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("competition_participants.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("cfd_orders.id"))
    position_id: Mapped[int] = mapped_column(ForeignKey("cfd_positions.id"), index=True)
    symbol: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(5))  # OPEN or CLOSE
    side: Mapped[str] = mapped_column(String(4))  # of the trade done: a long's close is a SELL
    lots: Mapped[Decimal] = mapped_column(Lots())
    price: Mapped[Decimal] = mapped_column(Price())
    tick_id: Mapped[int | None] = mapped_column(BigInteger)
    tick_ts_ms: Mapped[int] = mapped_column(BigInteger)
    bid: Mapped[Decimal] = mapped_column(Price())
    ask: Mapped[Decimal] = mapped_column(Price())
    rule: Mapped[str] = mapped_column(String(160))
    reason: Mapped[str] = mapped_column(String(16))  # MARKET, LIMIT, STOP or a CloseReason
    usd_rate: Mapped[Decimal | None] = mapped_column(Price())  # quote currency -> USD, None: USD-quoted
    realized_pnl: Mapped[Decimal | None] = mapped_column(Money())  # USD, for a CLOSE
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class BreachAction(enum.StrEnum):
    DISQUALIFY = "DISQUALIFY"  # positions closed at the breach's tick, out of the ranking
    FLAG = "FLAG"  # recorded for the admin only


class Rule(enum.StrEnum):
    DAILY_LOSS = "DAILY_LOSS"
    TOTAL_LOSS = "TOTAL_LOSS"
    MIN_TRADING_DAYS = "MIN_TRADING_DAYS"


class Breach(db.Model):
    """A participant's breach of a rule of the competition's rule set, with its proof: the
    recorded tick it happened at and the equity against the floor (or, for the trading
    days, the days against the minimum). Once per participant and rule."""

    __tablename__ = "competition_breaches"
    __table_args__ = (
        UniqueConstraint("participant_id", "rule", name="uq_competition_breaches_participant_rule"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    competition_id: Mapped[int] = mapped_column(ForeignKey("competitions.id", ondelete="CASCADE"), index=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("competition_participants.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    rule: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(12))
    tick_id: Mapped[int | None] = mapped_column(BigInteger)
    tick_ts_ms: Mapped[int | None] = mapped_column(BigInteger)
    equity: Mapped[Decimal | None] = mapped_column(Money())
    floor: Mapped[Decimal | None] = mapped_column(Money())
    detail: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CfdEngineState(db.Model):
    """Per symbol: the last recorded tick the CFD engine has processed. On start the engine
    replays the ticks after it, so a stop crossed while it was down fills at that tick."""

    __tablename__ = "cfd_engine_state"

    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_tick_id: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
