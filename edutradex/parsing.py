"""Parsing of user input shared by features (filters, forms)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

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
