"""Markets: the catalogue with live prices, and changes through market.service.update_market
(which validates them; the feed and the next trade pick them up once committed)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ...extensions import db
from ...market import service as market_service
from ...market.models import Market
from ...market.quotes import Quote, latest_quote
from .audit import Actor, record_audit

# The fields the admin edits, in form order; simulation-only ones are left out for FOREX.
EDITABLE = ("active", "payout_percent", "min_stake", "max_stake", "spread", "volatility_mode", "trend_bias",
            "contract_size", "lot_min", "lot_step", "lot_max", "quote_currency", "conversion_symbol")
# CFD terms (competitions): shown as typed, an empty conversion market means "quoted in USD".
OPTIONAL = {"conversion_symbol"}
SIMULATION_ONLY = {"volatility_mode", "trend_bias"}
LABELS = market_service.FIELD_LABELS
HINTS = {
    "payout_percent": f"{market_service.PAYOUT_MIN:g} to {market_service.PAYOUT_MAX:g}: a win pays the stake plus this share of it.",
    "spread": "Ask − bid, in price units.",
    "trend_bias": "−1 bearish … 0 neutral … 1 bullish.",
    "contract_size": "CFD units per lot: FOREX 100,000, gold 100 oz, synthetic indices 1.",
    "lot_step": "CFD orders' lots are multiples of this, from the minimum to the maximum.",
    "quote_currency": "The currency CFD profit is in (the pair's second currency).",
    "conversion_symbol": "The USD/<quote currency> market that converts CFD profit into USD "
                         "(the market itself for USD/JPY); empty when quoted in USD.",
}


def changed_labels(changed: dict[str, Any]) -> str:
    """The changed fields by their labels, in form order."""
    order = {field: i for i, field in enumerate(EDITABLE)}
    return ", ".join(LABELS.get(f, f) for f in sorted(changed, key=lambda f: (order.get(f, len(order)), f)))


@dataclass(frozen=True)
class MarketRow:
    market: Market
    quote: Quote | None


def markets_with_quotes() -> list[MarketRow]:
    return [MarketRow(market, latest_quote(market.symbol)) for market in market_service.list_markets()]


def editable_fields(market: Market) -> tuple[str, ...]:
    return tuple(f for f in EDITABLE if market.is_simulated or f not in SIMULATION_ONLY)


def form_value(market: Market, field: str) -> str:
    """What the form shows for a field: volumes as written (0.01, not 0.0100), nothing for None."""
    value = getattr(market, field)
    if value is None:
        return ""
    if isinstance(value, Decimal) and field in market_service.LOT_FIELDS:
        return f"{value.normalize():f}"
    return str(value)


def change_market(actor: Actor, symbol: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Apply the changes and audit them in one transaction. Returns the changed fields'
    new values (empty when nothing changed, and nothing is recorded)."""
    try:
        before, after = market_service.update_market(symbol, **changes)
    except BaseException:
        db.session.rollback()
        raise
    if not after:
        db.session.rollback()
        return {}
    record_audit(actor, "market.update", "market", symbol, before=before, after=after)
    db.session.commit()
    return after
