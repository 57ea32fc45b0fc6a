"""Parsing of user input shared by features (filters, forms)."""

from __future__ import annotations

from datetime import date

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
