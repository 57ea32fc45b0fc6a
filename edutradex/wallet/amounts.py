"""Credit amounts typed by people: exact, positive, at most 2 decimal places."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from ..errors import DomainError

# Far above any deposit or balance; stops "1e30" before it reaches a NUMERIC(18, 2) column.
ABSURD = Decimal("1000000000")


def parse_credit_amount(raw: str | None) -> Decimal:
    text = raw.strip() if isinstance(raw, str) else raw
    if text in (None, ""):
        raise DomainError("Enter an amount.")
    try:
        value = Decimal(str(text))
    except InvalidOperation:
        raise DomainError("Enter the amount as a number, e.g. 25 or 25.50.") from None
    if not value.is_finite():
        raise DomainError("Enter the amount as a number, e.g. 25 or 25.50.")
    if value <= 0:
        raise DomainError("The amount must be more than zero.")
    if value >= ABSURD:
        raise DomainError("That amount is far too large.")
    if value != value.quantize(Decimal("0.01")):
        raise DomainError("Amounts have at most 2 decimal places (cents).")
    return value.quantize(Decimal("0.01"))
