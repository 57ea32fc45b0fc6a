"""The market catalogue and the tick store."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, CheckConstraint, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..types import Lots, Money, Percent, Price, ScaledDecimal, UTCDateTime, utcnow

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a real BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class MarketType(enum.StrEnum):
    FOREX = "FOREX"  # real prices from a feed provider; never simulated
    OTC = "OTC"  # simulated copies of real pairs, open 24/7
    SYNTHETIC = "SYNTHETIC"  # volatility indices, simulated


class VolatilityMode(enum.StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    SPIKE = "SPIKE"


class Market(db.Model):
    __tablename__ = "markets"
    # Only scale-free checks: on SQLite these columns hold integers scaled by 10**scale, so
    # a bound like "payout_percent <= 100" would mean 1.00 there. The bounds (payout 1..100 %,
    # trend bias within -1..1) are enforced by service.update_market.
    __table_args__ = (
        CheckConstraint("min_stake > 0 AND max_stake >= min_stake", name="ck_markets_stake_range"),
        CheckConstraint("payout_percent > 0", name="ck_markets_payout"),
        CheckConstraint("contract_size > 0 AND lot_min > 0 AND lot_step > 0 AND lot_max >= lot_min",
                        name="ck_markets_instrument"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(80))
    market_type: Mapped[str] = mapped_column(String(12))
    active: Mapped[bool] = mapped_column(default=True)
    payout_percent: Mapped[Decimal] = mapped_column(Percent(), default=Decimal("80.00"))
    min_stake: Mapped[Decimal] = mapped_column(Money(), default=Decimal("1.00"))
    max_stake: Mapped[Decimal] = mapped_column(Money(), default=Decimal("1000.00"))
    volatility_mode: Mapped[str] = mapped_column(String(8), default=VolatilityMode.MEDIUM.value)
    trend_bias: Mapped[Decimal] = mapped_column(ScaledDecimal(6, 4), default=Decimal("0"))
    precision: Mapped[int] = mapped_column(default=5)  # decimal places quoted
    spread: Mapped[Decimal] = mapped_column(Price(), default=Decimal("0"))  # ask - bid, in price units
    initial_price: Mapped[Decimal | None] = mapped_column(Price())  # simulator start; None for FOREX
    provider_symbol: Mapped[str | None] = mapped_column(String(32))  # e.g. "EUR/USD" at the feed provider
    # Instrument terms of CFD trading (competitions): what one lot is, which volumes an order
    # may have, and the currency its profit is in. See instrument_defaults() for the seeds.
    contract_size: Mapped[Decimal] = mapped_column(Lots(), default=Decimal("1"))  # units per lot
    lot_min: Mapped[Decimal] = mapped_column(Lots(), default=Decimal("0.01"))
    lot_step: Mapped[Decimal] = mapped_column(Lots(), default=Decimal("0.01"))
    lot_max: Mapped[Decimal] = mapped_column(Lots(), default=Decimal("50"))
    quote_currency: Mapped[str] = mapped_column(String(3), default="USD")  # P&L currency
    # The market whose price converts the quote currency into USD (USD/JPY for JPY); None: USD.
    conversion_symbol: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    @property
    def is_simulated(self) -> bool:
        return self.market_type != MarketType.FOREX.value

    def __repr__(self) -> str:
        return f"<Market {self.symbol}>"


ACCOUNT_CURRENCY = "USD"  # competitions' account currency


def instrument_defaults(symbol: str, market_type: str) -> dict:
    """The seeded CFD terms of a market: FOREX pairs 100,000 units per lot, gold 100 oz,
    synthetic indices 1; profit in the pair's second currency, converted into USD by the
    USD/<currency> pair (the market itself for USD/JPY, USD/CHF)."""
    name = symbol.upper().removeprefix("OTC_")
    if market_type == MarketType.SYNTHETIC.value:
        return {"contract_size": Decimal("1"), "lot_min": Decimal("0.1"), "lot_step": Decimal("0.1"),
                "lot_max": Decimal("500"), "quote_currency": ACCOUNT_CURRENCY, "conversion_symbol": None}
    if "GOLD" in name or "XAU" in name:
        return {"contract_size": Decimal("100"), "lot_min": Decimal("0.01"), "lot_step": Decimal("0.01"),
                "lot_max": Decimal("50"), "quote_currency": ACCOUNT_CURRENCY, "conversion_symbol": None}
    letters = "".join(c for c in name if c.isalpha())
    base, quote = (letters[:3], letters[3:6]) if len(letters) == 6 else (letters[:3], ACCOUNT_CURRENCY)
    conversion = None if quote == ACCOUNT_CURRENCY else (symbol if base == ACCOUNT_CURRENCY else None)
    return {"contract_size": Decimal("100000"), "lot_min": Decimal("0.01"), "lot_step": Decimal("0.01"),
            "lot_max": Decimal("50"), "quote_currency": quote, "conversion_symbol": conversion}


class Tick(db.Model):
    """One price from the authority. `ts_ms` is the server's UTC time in milliseconds."""

    __tablename__ = "ticks"
    # AUTOINCREMENT on SQLite: ids are never reused, which the feed's id reservation relies on
    __table_args__ = (Index("ix_ticks_symbol_ts", "symbol", "ts_ms"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)  # given by the feed (TickIds)
    symbol: Mapped[str] = mapped_column(String(32))
    ts_ms: Mapped[int] = mapped_column(BigInteger)
    bid: Mapped[Decimal] = mapped_column(Price())
    ask: Mapped[Decimal] = mapped_column(Price())
    mid: Mapped[Decimal] = mapped_column(Price())
    source: Mapped[str] = mapped_column(String(16))
    # the authority tenure that wrote it (FeedAuthority.epoch); None for ticks written otherwise
    epoch: Mapped[int | None] = mapped_column(BigInteger)
    # simulated ticks: the tick number in its fairness period (the key of its randomness)
    seq: Mapped[int | None] = mapped_column(Integer)


class FeedAuthority(db.Model):
    """One row (id 1): the fence and the watermark of the tick store.

    `epoch` goes up by one each time a feed process takes the price authority; every tick
    flush checks it in its own transaction, so a holder that lost the lock (paused, then
    resumed) cannot write after the next one took over. `flushed_ms`: every tick the
    authority made at or before this time is stored, or covered by a recorded gap.
    `clean`: the last holder stopped after writing its last batch (nothing was lost)."""

    __tablename__ = "feed_authority"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    epoch: Mapped[int] = mapped_column(BigInteger, default=0)
    flushed_ms: Mapped[int | None] = mapped_column(BigInteger)
    clean: Mapped[bool] = mapped_column(default=True)


class TickGap(db.Model):
    """Ticks the authority made but could not store (a full buffer, or a holder that lost
    the authority with ticks unwritten): settlement never uses a price across one."""

    __tablename__ = "tick_gaps"
    __table_args__ = (Index("ix_tick_gaps_to", "to_ms"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    symbol: Mapped[str | None] = mapped_column(String(32))  # None: every symbol
    from_ms: Mapped[int] = mapped_column(BigInteger)
    to_ms: Mapped[int] = mapped_column(BigInteger)
    ticks_lost: Mapped[int | None] = mapped_column(Integer)  # None: not known
    reason: Mapped[str] = mapped_column(String(32))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Candle(db.Model):
    """OHLC aggregated from ticks, kept after the raw ticks are pruned."""

    __tablename__ = "candles"
    __table_args__ = (UniqueConstraint("symbol", "resolution", "start_s", name="uq_candles_symbol_res_start"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    symbol: Mapped[str] = mapped_column(String(32))
    resolution: Mapped[int] = mapped_column()  # seconds
    start_s: Mapped[int] = mapped_column(BigInteger)  # unix seconds, aligned to resolution
    open: Mapped[Decimal] = mapped_column(Price())
    high: Mapped[Decimal] = mapped_column(Price())
    low: Mapped[Decimal] = mapped_column(Price())
    close: Mapped[Decimal] = mapped_column(Price())
    tick_count: Mapped[int] = mapped_column(default=0)


class FairnessPeriod(db.Model):
    """One market's committed seed for one period (provably fair prices, see fairness.py).

    `commitment` = sha256(seed) is published before the period starts; the seed itself is
    kept encrypted (`seed_encrypted`, the KYC cipher) until the period ends, then revealed
    in `seed`. `reserved_through`: the tick numbers the feed may have used, reserved ahead
    and committed before use, so a restart resumes after them and never draws twice."""

    __tablename__ = "fairness_periods"
    __table_args__ = (UniqueConstraint("symbol", "start_ms", name="uq_fairness_periods_symbol_start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32))
    start_ms: Mapped[int] = mapped_column(BigInteger)
    end_ms: Mapped[int] = mapped_column(BigInteger)
    commitment: Mapped[str] = mapped_column(String(64))
    seed_encrypted: Mapped[str | None] = mapped_column(Text)  # cleared once revealed
    seed: Mapped[str | None] = mapped_column(String(64))  # hex, after the period ended
    committed_at_ms: Mapped[int] = mapped_column(BigInteger)
    revealed_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    reserved_through: Mapped[int] = mapped_column(Integer, default=0)
    tick_count: Mapped[int | None] = mapped_column(Integer)
    first_tick: Mapped[int | None] = mapped_column(Integer)
    last_tick: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10), default="COMMITTED")  # COMMITTED, REVEALED, VERIFIED, PARTIAL, FAILED
    status_detail: Mapped[str | None] = mapped_column(String(300))


class FairnessLogEntry(db.Model):
    """What shapes a period's prices from tick number `from_tick` on: a CONFIG change, the
    period's OPEN or a feed RESTART (both with the anchor price the walk starts from, as if
    the previous tick had been at anchor_ts_ms), or a GAP (tick numbers from_tick..to_tick
    used or reserved but not recorded)."""

    __tablename__ = "fairness_config_log"
    __table_args__ = (Index("ix_fairness_config_log_period", "symbol", "period_start_ms", "from_tick"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    symbol: Mapped[str] = mapped_column(String(32))
    period_start_ms: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(8))
    from_tick: Mapped[int] = mapped_column(Integer)
    to_tick: Mapped[int | None] = mapped_column(Integer)  # GAP only
    config: Mapped[str | None] = mapped_column(Text)  # JSON: volatility_mode, trend_bias, precision, spread
    anchor_mid: Mapped[Decimal | None] = mapped_column(Price())
    anchor_ts_ms: Mapped[int | None] = mapped_column(BigInteger)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
