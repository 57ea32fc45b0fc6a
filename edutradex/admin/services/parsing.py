"""Parsing what an admin types. Only the format lives here (a finite decimal with so many
places); the limits that are business rules stay in the feature services."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal, InvalidOperation

from ...errors import DomainError


class InputError(DomainError):
    status_code = 422


def parse_decimal(raw: str | None, label: str, *, places: int, allow_negative: bool = False,
                  allow_zero: bool = False) -> Decimal:
    text = (raw or "").strip()
    if not text:
        raise InputError(f"{label}: enter a number.")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InputError(f"{label}: {text[:20]!r} is not a number.") from None
    # "1e309" is a finite Decimal but not a sensible amount; accept plain notation only.
    if not value.is_finite() or "e" in text.lower():
        raise InputError(f"{label}: enter a plain number such as 12.50.")
    if value != value.quantize(Decimal(1).scaleb(-places)):
        raise InputError(f"{label}: use at most {places} decimal places.")
    if value < 0 and not allow_negative:
        raise InputError(f"{label}: must not be negative.")
    if value == 0 and not allow_zero:
        raise InputError(f"{label}: must not be zero.")
    if abs(value) >= Decimal(10) ** 15:
        raise InputError(f"{label}: that amount is too large.")
    return value.quantize(Decimal(1).scaleb(-places))


def parse_form_key(raw: str | None) -> str:
    """The one-time key a form was rendered with (see ``new_form_key``)."""
    text = (raw or "").strip()
    if not re.fullmatch(r"[0-9a-f]{32}", text):
        raise InputError("This form is out of date: reload the page and try again.")
    return text


def new_form_key() -> str:
    return uuid.uuid4().hex


def parse_reason(raw: str | None, label: str = "Reason", *, max_len: int = 500) -> str:
    text = (raw or "").strip()
    if len(text) < 3:
        raise InputError(f"{label}: give a reason (at least 3 characters).")
    if len(text) > max_len:
        raise InputError(f"{label}: at most {max_len} characters.")
    return text


def parse_note(raw: str | None, *, max_len: int = 500) -> str | None:
    """An optional note for the audit log."""
    text = (raw or "").strip()
    if len(text) > max_len:
        raise InputError(f"Note: at most {max_len} characters.")
    return text or None
