"""Credit amounts typed by people: the shared money parser with the wallet's bounds (the
deposit and withdrawal limits are checked by their services)."""

from __future__ import annotations

from decimal import Decimal

from ..parsing import parse_decimal

# Far above any deposit or balance; NUMERIC(18, 2) columns hold far more.
ABSURD = Decimal("1000000000")


def parse_credit_amount(raw: str | None) -> Decimal:
    return parse_decimal(raw, "Amount", places=2, minimum=Decimal(0), above_minimum=True, maximum=ABSURD,
                         example="25.50")
