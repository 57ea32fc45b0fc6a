"""The market catalogue: look-ups, the default markets, and validated admin changes.

A change committed here reaches the feed loop on its next tick (see `config_signal`) and
the next trade (which reads the row)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import select

from ..errors import DomainError, found
from ..extensions import db
from ..parsing import parse_decimal
from ..settings import get_setting
from . import config_signal, quotes, ticks
from .models import ACCOUNT_CURRENCY, Market, MarketType, VolatilityMode, instrument_defaults


@dataclass(frozen=True)
class DefaultMarket:
    symbol: str
    name: str
    market_type: str
    precision: int
    spread: str
    initial_price: str | None = None
    volatility_mode: str = VolatilityMode.MEDIUM.value
    provider_symbol: str | None = None


OTC, SYN, FX = MarketType.OTC.value, MarketType.SYNTHETIC.value, MarketType.FOREX.value

DEFAULT_MARKETS: tuple[DefaultMarket, ...] = (
    DefaultMarket("OTC_EUR_USD", "EUR/USD OTC", OTC, 5, "0.00010", "1.0850"),
    DefaultMarket("OTC_GBP_USD", "GBP/USD OTC", OTC, 5, "0.00015", "1.2650"),
    DefaultMarket("OTC_USD_JPY", "USD/JPY OTC", OTC, 3, "0.015", "149.50"),
    DefaultMarket("OTC_GOLD", "Gold OTC", OTC, 2, "0.30", "2050.00", VolatilityMode.HIGH.value),
    DefaultMarket("VOLATILITY_10", "Volatility 10 Index", SYN, 3, "0.010", "100.00", VolatilityMode.LOW.value),
    DefaultMarket("VOLATILITY_25", "Volatility 25 Index", SYN, 3, "0.020", "100.00", VolatilityMode.MEDIUM.value),
    DefaultMarket("VOLATILITY_50", "Volatility 50 Index", SYN, 3, "0.030", "100.00", VolatilityMode.HIGH.value),
    DefaultMarket("VOLATILITY_100", "Volatility 100 Index", SYN, 3, "0.050", "100.00", VolatilityMode.SPIKE.value),
    DefaultMarket("EUR_USD", "EUR/USD", FX, 5, "0.00010", provider_symbol="EUR/USD"),
    DefaultMarket("GBP_USD", "GBP/USD", FX, 5, "0.00015", provider_symbol="GBP/USD"),
    DefaultMarket("USD_JPY", "USD/JPY", FX, 3, "0.015", provider_symbol="USD/JPY"),
    DefaultMarket("AUD_USD", "AUD/USD", FX, 5, "0.00015", provider_symbol="AUD/USD"),
    DefaultMarket("USD_CHF", "USD/CHF", FX, 5, "0.00015", provider_symbol="USD/CHF"),
)


def seed_markets() -> str:
    """Add the default markets that are missing; never touches existing rows."""
    existing = set(db.session.scalars(select(Market.symbol)))
    payout = get_setting("default_payout_percent")
    added = []
    for default in DEFAULT_MARKETS:
        if default.symbol in existing:
            continue
        db.session.add(Market(
            symbol=default.symbol, name=default.name, market_type=default.market_type, active=True,
            payout_percent=payout, min_stake=Decimal("1.00"), max_stake=Decimal("1000.00"),
            volatility_mode=default.volatility_mode, trend_bias=Decimal("0"), precision=default.precision,
            spread=Decimal(default.spread),
            initial_price=Decimal(default.initial_price) if default.initial_price else None,
            provider_symbol=default.provider_symbol,
            **instrument_defaults(default.symbol, default.market_type),
        ))
        added.append(default.symbol)
    db.session.commit()
    return f"Markets: added {len(added)} ({', '.join(added)})." if added else "Markets: all defaults present."


def get_market(symbol: str) -> Market:
    market = db.session.scalar(select(Market).where(Market.symbol == symbol)) if isinstance(symbol, str) else None
    return found(market, f"Unknown market {symbol!r}.")


# The hot path (placing a trade, rendering prices) reads market config on every request. A
# per-app snapshot of the catalogue is reloaded when config_signal's version moves (an edit
# committed in this process, or in any process through Redis), and at least every
# SNAPSHOT_SECONDS as a safety net: an admin's change still applies to the next trade.
SNAPSHOT_SECONDS = 5.0


def market_snapshot(symbol: str) -> Market | None:
    """A read-only copy of the market's configuration (not attached to any session)."""
    cache = current_app.extensions.get("market_snapshots")
    version = config_signal.version()
    now = time.monotonic()
    if cache is None or cache["version"] != version or now - cache["loaded_at"] > SNAPSHOT_SECONDS:
        rows = db.session.execute(select(Market.__table__)).mappings().all()
        cache = {"version": version, "loaded_at": now, "markets": {row["symbol"]: Market(**row) for row in rows}}
        current_app.extensions["market_snapshots"] = cache
    return cache["markets"].get(symbol) if isinstance(symbol, str) else None


# Simulated markets first (always open), real FOREX last (it needs a data provider).
TYPE_ORDER = {MarketType.OTC.value: 0, MarketType.SYNTHETIC.value: 1, MarketType.FOREX.value: 2}


def natural_key(text: str) -> tuple:
    """Numbers compare as numbers: Volatility 10, 25, 50, 100 (not 10, 100, 25, 50)."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part.lower())
                 for part in re.split(r"(\d+)", text) if part)


def market_order(market: Market) -> tuple:
    return TYPE_ORDER.get(market.market_type, len(TYPE_ORDER)), natural_key(market.name), market.symbol


def market_name(symbol: str) -> str:
    """The market's display name (the symbol itself for an unknown one)."""
    market = market_snapshot(symbol)
    return market.name if market is not None else symbol


def list_markets(market_type: str | None = None, active_only: bool = False) -> list[Market]:
    """In display order: OTC, then the volatility indices, then FOREX; names sorted naturally."""
    query = select(Market)
    if market_type:
        if market_type not in MarketType.__members__:
            raise DomainError(f"Unknown market type {market_type!r}; use FOREX, OTC or SYNTHETIC.")
        query = query.where(Market.market_type == market_type)
    if active_only:
        query = query.where(Market.active.is_(True))
    return sorted(db.session.scalars(query), key=market_order)


def grouped_markets(markets: list[Market]) -> list[tuple[str, list[Market]]]:
    """(market type, its markets) in the order given: for grouped pickers."""
    groups: list[tuple[str, list[Market]]] = []
    for market in markets:
        if not groups or groups[-1][0] != market.market_type:
            groups.append((market.market_type, []))
        groups[-1][1].append(market)
    return groups


# ---- validated changes (the admin panel) ------------------------------------------------

STAKE_LIMIT_CEILING = Decimal("10000000")  # no market's stake limits go above this

def _decimal(field: str, raw: Any, places: int, low: Decimal | None = None, high: Decimal | None = None,
             low_inclusive: bool = True) -> Decimal:
    return parse_decimal(raw, field, places=places, minimum=low, maximum=high, above_minimum=not low_inclusive,
                         example="1.5")


def _bool(field: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise DomainError(f"{field}: enter yes or no.")


def _int(field: str, raw: Any, low: int, high: int) -> int:
    if isinstance(raw, bool):
        raise DomainError(f"{field}: enter a whole number.")
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise DomainError(f"{field}: enter a whole number.") from None
    if not low <= value <= high:
        raise DomainError(f"{field}: enter a whole number from {low} to {high}.")
    return value


def _text(field: str, raw: Any, max_len: int, required: bool = True) -> str | None:
    value = str(raw or "").strip()
    if not value:
        if required:
            raise DomainError(f"{field}: cannot be empty.")
        return None
    if len(value) > max_len:
        raise DomainError(f"{field}: at most {max_len} characters.")
    return value


def _volatility(field: str, raw: Any) -> str:
    value = str(raw).strip().upper()
    if value not in VolatilityMode.__members__:
        raise DomainError(f"{field}: choose LOW, MEDIUM, HIGH or SPIKE.")
    return value


# A win pays the stake plus payout % of it. The product guide's default is 80 %; above 100 %
# a win would pay more than double the stake, which no fixed-odds desk offers.
PAYOUT_MIN, PAYOUT_MAX = Decimal("1"), Decimal("100")


def _payout(raw: Any) -> Decimal:
    value = _decimal(FIELD_LABELS["payout_percent"], raw, 2)
    if not PAYOUT_MIN <= value <= PAYOUT_MAX:
        raise DomainError(f"Payout %: enter {PAYOUT_MIN} to {PAYOUT_MAX}. A win pays the stake plus this share of it, "
                          f"so {PAYOUT_MAX} doubles the stake.")
    return value


# What people call each field (admin forms, messages and the audit log).
FIELD_LABELS = {
    "name": "Name", "active": "Open for trading", "payout_percent": "Payout %", "min_stake": "Minimum stake",
    "max_stake": "Maximum stake", "volatility_mode": "Volatility mode", "trend_bias": "Trend bias",
    "precision": "Precision", "spread": "Spread", "initial_price": "Start price", "provider_symbol": "Provider symbol",
    "contract_size": "Contract size", "lot_min": "Lot minimum", "lot_step": "Lot step", "lot_max": "Lot maximum",
    "quote_currency": "Quote currency", "conversion_symbol": "Conversion market",
}
LOT_FIELDS = ("contract_size", "lot_min", "lot_step", "lot_max")
LOTS_CEILING = Decimal("1000000")  # no instrument term goes above this (lots or units per lot)


def _lots(field: str) -> Callable[[Any], Decimal]:
    return lambda raw: _decimal(FIELD_LABELS[field], raw, 4, Decimal("0"), LOTS_CEILING, low_inclusive=False)


def _currency(raw: Any) -> str:
    value = str(raw or "").strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", value):
        raise DomainError("Quote currency: three letters, e.g. USD or JPY.")
    return value


def _conversion(raw: Any) -> str | None:
    value = _text(FIELD_LABELS["conversion_symbol"], raw, 32, required=False)
    return value.upper() if value else None


def check_instrument(market: Market, values: dict[str, Any]) -> None:
    """The CFD terms together: lot minimum <= maximum, both on the step; a market quoted in
    USD has no conversion market, any other one the USD/<quote currency> market."""
    lot_min, lot_step, lot_max = (values.get(f, getattr(market, f)) for f in ("lot_min", "lot_step", "lot_max"))
    if lot_max < lot_min:
        raise DomainError("Lot maximum must be at least the lot minimum.")
    if lot_min % lot_step or lot_max % lot_step:
        raise DomainError("Lot minimum and maximum must be multiples of the lot step.")
    currency = values.get("quote_currency", market.quote_currency)
    conversion = values.get("conversion_symbol", market.conversion_symbol)
    if currency == ACCOUNT_CURRENCY:
        if conversion is not None:
            raise DomainError("Conversion market: leave it empty for a market quoted in USD.")
        return
    if conversion is None:
        raise DomainError(f"Conversion market: a market quoted in {currency} needs the USD/{currency} market "
                          "that converts its profit into USD.")
    letters = "".join(c for c in conversion.removeprefix("OTC_") if c.isalpha())
    exists = conversion == market.symbol or db.session.scalar(select(Market.id).where(Market.symbol == conversion))
    if letters != f"{ACCOUNT_CURRENCY}{currency}" or not exists:
        raise DomainError(f"Conversion market: the symbol of the USD/{currency} market (e.g. USD_{currency}).")

PARSERS = {
    "name": lambda raw: _text("Name", raw, 80),
    "active": lambda raw: _bool("Open for trading", raw),
    "payout_percent": _payout,
    "min_stake": lambda raw: _decimal("Minimum stake", raw, 2, Decimal("0"), STAKE_LIMIT_CEILING, low_inclusive=False),
    "max_stake": lambda raw: _decimal("Maximum stake", raw, 2, Decimal("0"), STAKE_LIMIT_CEILING, low_inclusive=False),
    "volatility_mode": lambda raw: _volatility("Volatility mode", raw),
    "trend_bias": lambda raw: _decimal("Trend bias", raw, 4, Decimal("-1"), Decimal("1")),
    "precision": lambda raw: _int("Precision", raw, 0, 8),
    "spread": lambda raw: _decimal("Spread", raw, 8, Decimal("0"), Decimal("1000000")),
    "initial_price": lambda raw: _decimal("Start price", raw, 8, Decimal("0"), Decimal("1000000000"), low_inclusive=False),
    "provider_symbol": lambda raw: _text("Provider symbol", raw, 32, required=False),
    "contract_size": _lots("contract_size"),
    "lot_min": _lots("lot_min"),
    "lot_step": _lots("lot_step"),
    "lot_max": _lots("lot_max"),
    "quote_currency": _currency,
    "conversion_symbol": _conversion,
}
SIMULATION_FIELDS = {"volatility_mode", "trend_bias", "initial_price"}


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def market_config(market: Market) -> dict[str, Any]:
    """The editable fields as plain JSON-friendly values."""
    return {field: _plain(getattr(market, field)) for field in PARSERS}


def update_market(symbol: str, /, **changes: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate every field, apply, flush. Returns (before, after) holding only the fields
    that changed (both empty when nothing did). The caller commits (with its audit entry);
    the feed applies the change on its next tick after that commit."""
    market = get_market(symbol)
    unknown = set(changes) - set(PARSERS)
    if unknown:
        raise DomainError(f"These market fields cannot be changed: {', '.join(sorted(unknown))}.")
    values = {field: PARSERS[field](raw) for field, raw in changes.items()}
    if market.market_type == MarketType.FOREX.value:
        simulated = sorted(SIMULATION_FIELDS & {f for f, v in values.items() if v is not None})
        if simulated:
            labels = ", ".join(label for field, label in FIELD_LABELS.items() if field in simulated)
            raise DomainError(f"{market.name} uses real prices; {labels} only apply to simulated markets.")
    elif values.get("initial_price", market.initial_price) is None:
        raise DomainError("Start price: a simulated market needs one.")
    min_stake = values.get("min_stake", market.min_stake)
    max_stake = values.get("max_stake", market.max_stake)
    if max_stake < min_stake:
        raise DomainError("Maximum stake must be at least the minimum stake.")
    check_instrument(market, values)

    before, after = {}, {}
    for field, value in values.items():
        current = getattr(market, field)
        if current == value:
            continue
        before[field], after[field] = _plain(current), _plain(value)
        setattr(market, field, value)
    if after:
        db.session.flush()
        config_signal.mark_changed(db.session)
    return before, after


# ---- what the pages and the API show ----------------------------------------------------

def price_quantum(precision: int) -> Decimal:
    return Decimal(1).scaleb(-precision)


def feed_configured() -> bool:
    config = current_app.config
    return bool(config.get("TWELVEDATA_API_KEY") or config.get("FINNHUB_API_KEY"))


NEEDS_PROVIDER = ("{name} uses real prices, which need a market-data provider; none is configured, "
                  "so it cannot be traded here.")


def needs_provider(market: Market) -> bool:
    """A FOREX market that can never get a price on this install."""
    return not market.is_simulated and not feed_configured()


@dataclass(frozen=True)
class MarketView:
    market: Market
    status: str  # live | stale | unavailable | paused
    message: str | None
    quote: quotes.Quote | None
    reference: Decimal | None  # price 24 hours ago (the first tick since), for the change %

    @property
    def change_percent(self) -> Decimal | None:
        if self.quote is None or not self.reference:
            return None
        return ((self.quote.mid - self.reference) / self.reference * 100).quantize(Decimal("0.01"))

    def price(self, value: Decimal | None) -> str | None:
        return None if value is None else str(value.quantize(price_quantum(self.market.precision)))

    def as_json(self) -> dict[str, Any]:
        m, q = self.market, self.quote
        return {
            "symbol": m.symbol, "name": m.name, "market_type": m.market_type, "precision": m.precision,
            "payout_percent": str(m.payout_percent), "status": self.status, "available": self.status == "live",
            "message": self.message, "bid": self.price(q and q.bid), "ask": self.price(q and q.ask),
            "mid": self.price(q and q.mid), "ts_ms": q and q.ts_ms, "tick_id": q and q.tick_id,
            "source": q and q.source, "change_percent": None if self.change_percent is None else str(self.change_percent),
        }


def market_view(market: Market, with_change: bool = False) -> MarketView:
    quote = quotes.latest_quote(market.symbol)
    status, message = "live", None
    if not market.active:
        status, message = "paused", f"{market.name} is paused by the operators."
    elif quote is None and needs_provider(market):
        status, message = "unavailable", NEEDS_PROVIDER.format(name=market.name)
    else:
        try:
            quotes.fresh_quote(market.symbol, market.name)
        except quotes.MarketUnavailable as err:
            status = "unavailable" if quote is None else "stale"
            message = err.message
    reference = None
    if with_change and quote is not None:
        first = ticks.first_tick_after(market.symbol, quote.ts_ms - 86_400_000)
        reference = first.mid if first is not None else None
    return MarketView(market, status, message, quote, reference)
