"""Column types shared by every feature: exact decimals and UTC timestamps.

PostgreSQL stores money and prices as NUMERIC. SQLite has no exact decimal type (NUMERIC
columns hold floats there), so on SQLite the same columns hold integers scaled by
10**scale: arithmetic done in SQL (``balance - :stake``, ``SUM(amount)``) stays exact on
both databases, and Python always sees ``Decimal``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import BigInteger, DateTime, Numeric
from sqlalchemy.types import TypeDecorator


class ScaledDecimal(TypeDecorator):
    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int, scale: int):
        super().__init__()
        self.precision = precision
        self.scale = scale
        self._quantum = Decimal(1).scaleb(-scale)
        self._factor = Decimal(10) ** scale

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))

    def _exact(self, value) -> Decimal:
        try:
            value = Decimal(value) if not isinstance(value, Decimal) else value
        except (InvalidOperation, TypeError, ValueError):
            raise ValueError(f"not a decimal: {value!r}") from None
        if not value.is_finite():
            raise ValueError(f"not a finite decimal: {value!r}")
        quantised = value.quantize(self._quantum)
        if quantised != value:
            raise ValueError(f"{value} has more than {self.scale} decimal places; round it first")
        return quantised

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("floats are not accepted for exact decimal columns")
        value = self._exact(value)
        if dialect.name == "sqlite":
            return int(value * self._factor)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if dialect.name == "sqlite":
            return (Decimal(int(value)) / self._factor).quantize(self._quantum)
        return Decimal(value).quantize(self._quantum)

    def coerce_compared_value(self, op, value):
        return self


def Money() -> ScaledDecimal:  # noqa: N802 - reads like a type in column definitions
    """Credits and demo balances: 2 decimal places."""
    return ScaledDecimal(18, 2)


def Price() -> ScaledDecimal:  # noqa: N802
    """Quotes: 8 decimal places, enough for every market we list."""
    return ScaledDecimal(20, 8)


def Lots() -> ScaledDecimal:  # noqa: N802
    """CFD volumes and contract sizes: 4 decimal places (lot steps of 0.01 and finer)."""
    return ScaledDecimal(16, 4)


def Percent() -> ScaledDecimal:  # noqa: N802
    return ScaledDecimal(7, 2)


class UTCDateTime(TypeDecorator):
    """Stores naive UTC, always hands back an aware UTC datetime."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    """The server clock: the only clock the platform trusts."""
    return datetime.now(UTC)
