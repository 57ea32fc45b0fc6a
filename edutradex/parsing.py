"""Parsing of user input shared by features (filters, forms)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from sqlalchemy import ColumnElement

from .errors import DomainError


def parse_iso_date(raw: str | None, label: str) -> date | None:
    """An optional YYYY-MM-DD date from a filter field; a clear message otherwise."""
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise DomainError(f"{label}: enter a date as YYYY-MM-DD (e.g. 2025-01-31).") from None


def within_days(column, since: date | None, until: date | None) -> list[ColumnElement[bool]]:
    """Conditions for a UTC timestamp column falling on the days from `since` to `until`,
    both inclusive (either may be open)."""
    conditions = []
    if since:
        conditions.append(column >= datetime.combine(since, time.min, UTC))
    if until:
        conditions.append(column < datetime.combine(until + timedelta(days=1), time.min, UTC))
    return conditions


MONEY_LIMIT = Decimal("1000000000")  # far above any fee or capital; stops "1e30" before NUMERIC(18, 2)


def parse_money(raw: str | Decimal | int | None, label: str, *, allow_zero: bool = True,
                limit: Decimal = MONEY_LIMIT) -> Decimal:
    """An amount of credits or points typed by a person (or passed by a service): a plain,
    finite, non-negative number with at most 2 decimal places, below ``limit``."""
    if isinstance(raw, bool) or isinstance(raw, float):
        raise DomainError(f"{label}: enter the amount as a plain number such as 25 or 25.50.")
    text = raw.strip() if isinstance(raw, str) else ("" if raw is None else str(raw))
    if not text:
        raise DomainError(f"{label}: enter an amount.")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise DomainError(f"{label}: {text[:20]!r} is not a number.") from None
    if not value.is_finite() or "e" in text.lower():
        raise DomainError(f"{label}: enter the amount as a plain number such as 25 or 25.50.")
    if value < 0:
        raise DomainError(f"{label}: must not be negative.")
    if value == 0 and not allow_zero:
        raise DomainError(f"{label}: must be more than zero.")
    if value >= limit:
        raise DomainError(f"{label}: that amount is far too large (the limit is {limit:,}).")
    if value != value.quantize(Decimal("0.01")):
        raise DomainError(f"{label}: use at most 2 decimal places (cents).")
    return value.quantize(Decimal("0.01"))
