"""Parsing of user input shared by features (forms, filters): the one money parser, the one
page-number parser and the one date parser. Each use gives its own bounds; every refusal is
a DomainError (or the caller's subclass) with a message a person can act on."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import ColumnElement

from .errors import DomainError

# Plain decimal notation only: ASCII digits, an optional sign and point. No exponents
# ("1e309"), no NaN/Infinity, no other scripts' digits ("²", "١٢") that Decimal and int()
# would otherwise accept or choke on.
_PLAIN_NUMBER = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?")
# Wider than any bound a caller gives (NUMERIC(18, 2) money holds 16 integer digits);
# longer input is refused before any arithmetic, so Decimal's 28-digit context never overflows.
_MAX_INTEGER_DIGITS = 16
_MAX_TEXT = 64
MAX_PAGE = 1_000_000


def _bound(value: Decimal) -> str:
    return f"{value:f}"


def parse_decimal(raw: str | Decimal | int | None, label: str, *, places: int, minimum: Decimal | None = None,
                  maximum: Decimal | None = None, above_minimum: bool = False, nonzero: bool = False,
                  example: str = "10.00", error: type[DomainError] = DomainError) -> Decimal:
    """An exact decimal typed by a person (or handed over as Decimal/int by code), with at
    most ``places`` decimal places, within ``minimum`` (exclusive with ``above_minimum``)
    and ``maximum``, and not 0 with ``nonzero``. Returns it quantized to ``places``."""
    if isinstance(raw, bool | float):  # a float has already lost the exact cents
        raise error(f"{label}: enter an exact decimal amount, e.g. {example}.")
    if isinstance(raw, Decimal | int):
        if isinstance(raw, Decimal) and (not raw.is_finite() or abs(raw.adjusted()) > _MAX_INTEGER_DIGITS + places):
            raise error(f"{label}: enter a number, e.g. {example}.")
        raw = f"{Decimal(raw):f}"
    text = (raw or "").strip()
    match = _PLAIN_NUMBER.fullmatch(text) if len(text) <= _MAX_TEXT else None
    if match is None or not (match.group(2) or match.group(3)):
        raise error(f"{label}: enter a number, e.g. {example}.")
    sign, whole, fraction = match.group(1), match.group(2).lstrip("0"), (match.group(3) or "").rstrip("0")
    if len(whole) > _MAX_INTEGER_DIGITS:
        if sign == "-" and minimum is not None:
            raise error(f"{label}: must be {'more than' if above_minimum else 'at least'} {_bound(minimum)}.")
        raise error(f"{label}: must be at most {_bound(maximum)}." if maximum is not None
                    else f"{label}: that number is far too large.")
    if len(fraction) > places:
        raise error(f"{label}: use at most {places} decimal places." if places else f"{label}: enter a whole number.")
    value = Decimal(f"{sign}{whole or '0'}.{fraction or '0'}").quantize(Decimal(1).scaleb(-places))
    if minimum is not None and (value < minimum or (above_minimum and value == minimum)):
        raise error(f"{label}: must be {'more than' if above_minimum else 'at least'} {_bound(minimum)}.")
    if maximum is not None and value > maximum:
        raise error(f"{label}: must be at most {_bound(maximum)}.")
    if nonzero and value == 0:
        raise error(f"{label}: must not be zero.")
    return value + 0  # no negative zero ("-0.00")


def parse_page(raw: str | None) -> int:
    """A page number from the query string. Navigation is forgiving: anything that is not a
    plain positive number is page 1, and numbers past MAX_PAGE are MAX_PAGE (an empty page),
    so no OFFSET can overflow the database."""
    text = (raw or "").strip()
    if not text.isascii() or not text.isdigit():
        return 1
    if len(text) > len(str(MAX_PAGE)):
        return MAX_PAGE
    return min(max(1, int(text)), MAX_PAGE)


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
