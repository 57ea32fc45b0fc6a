"""Parsing and checking a competition's terms (what an admin types, or a service passes).

Each problem raises a DomainError with a message the admin can act on; nothing is written
until every term is valid."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from ..errors import DomainError
from ..extensions import db
from ..parsing import parse_decimal
from .models import DEFAULT_CAPITAL, DEFAULT_LEVERAGE, BreachAction, CompetitionKind, Repeats

MAX_PARTICIPANTS = 100_000
MAX_CAPITAL = Decimal("100000000")  # 100 million points
MAX_FEE = Decimal("1000000")  # credits
MAX_LEVERAGE = 1000
MAX_REBUYS = 100
MAX_PRIZE_RANKS = 1000
MAX_FREEZE_MINUTES = 7 * 24 * 60
SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
ESMA_MAJOR_CURRENCIES = {"USD", "EUR", "JPY", "GBP", "CAD", "CHF"}

# The rule set (rules.py): each blank = off.
RULE_FIELDS = ("max_daily_loss_percent", "max_total_loss_percent", "min_trading_days", "max_open_positions",
               "max_lots_per_order", "breach_action")
MAX_TRADING_DAYS = 366
MAX_OPEN_POSITIONS = 1000
MAX_LOTS = Decimal("10000")

# Every term, with its default (None: required).
TERM_FIELDS = (
    "name", "slug", "description", "kind", "entry_fee", "starting_capital", "min_participants", "max_participants",
    "registration_opens_at", "registration_closes_at", "start_at", "end_at", "allowed_markets", "max_leverage",
    "stop_out_percent", "margin_call_percent", "platform_fee_percent", "prize_table", "guaranteed_pool",
    "prize_requires_trade", "rebuys_allowed", "max_rebuys", "rebuy_fee", "repeats", "freeze_minutes",
    *RULE_FIELDS,
)


class TermsError(DomainError):
    status_code = 422


def leverage_class(symbol: str, market_type: str) -> str:
    """Which ESMA leverage limit applies: FX_MAJOR (two of USD EUR JPY GBP CAD CHF),
    FX_OTHER (other pairs and gold), SYNTHETIC (our volatility indices)."""
    if market_type == "SYNTHETIC":
        return "SYNTHETIC"
    letters = "".join(c for c in symbol.upper().removeprefix("OTC_") if c.isalpha())
    if len(letters) == 6 and letters[:3] in ESMA_MAJOR_CURRENCIES and letters[3:] in ESMA_MAJOR_CURRENCIES:
        return "FX_MAJOR"
    return "FX_OTHER"


def _text(raw: Any, label: str, *, min_len: int, max_len: int) -> str:
    text = (raw or "").strip() if isinstance(raw, str | type(None)) else str(raw).strip()
    if len(text) < min_len:
        raise TermsError(f"{label}: at least {min_len} characters." if min_len > 1 else f"{label}: required.")
    if len(text) > max_len:
        raise TermsError(f"{label}: at most {max_len} characters.")
    return text


def _int(raw: Any, label: str, *, low: int, high: int) -> int:
    if isinstance(raw, bool) or isinstance(raw, float):
        raise TermsError(f"{label}: enter a whole number.")
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise TermsError(f"{label}: enter a whole number.") from None
    if not low <= value <= high:
        raise TermsError(f"{label}: between {low:,} and {high:,}.")
    return value


def _percent(raw: Any, label: str, *, low: Decimal, high: Decimal, allow_low: bool = True) -> Decimal:
    return parse_decimal(raw, label, places=2, minimum=low, maximum=high, above_minimum=not allow_low, example="12.5",
                         error=TermsError)


def _money(raw: Any, label: str, *, allow_zero: bool, limit: Decimal) -> Decimal:
    return parse_decimal(raw, label, places=2, minimum=Decimal(0), maximum=limit, above_minimum=not allow_zero,
                         example="25.50", error=TermsError)


def _time(raw: Any, label: str) -> datetime:
    if isinstance(raw, datetime):
        value = raw
    else:
        text = (raw or "").strip() if isinstance(raw, str | type(None)) else ""
        if not text:
            raise TermsError(f"{label}: enter a date and time (UTC).")
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise TermsError(f"{label}: enter a date and time as YYYY-MM-DD HH:MM (UTC).") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # forms send the server clock's time, which is UTC
    return value.astimezone(UTC).replace(microsecond=0)


def _bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    return str(raw or "").strip().lower() in {"1", "true", "yes", "on", "y"}


def _prize_table(raw: Any) -> list[str]:
    """rank -> %: a mapping ({1: "70", "2": "20"}) or a list (rank 1 first)."""
    if raw is None or raw == "" or raw == [] or raw == {}:
        return []
    if isinstance(raw, Mapping):
        entries: dict[int, Any] = {}
        for key, value in raw.items():
            rank = _int(key, "Prize table rank", low=1, high=MAX_PRIZE_RANKS)
            if rank in entries:
                raise TermsError(f"Prize table: rank {rank} is listed twice.")
            entries[rank] = value
        missing = [rank for rank in range(1, max(entries) + 1) if rank not in entries]
        if missing:
            raise TermsError(f"Prize table: ranks must run 1, 2, 3 ... without gaps (rank {missing[0]} is missing).")
        values = [entries[rank] for rank in range(1, len(entries) + 1)]
    elif isinstance(raw, list | tuple):
        values = list(raw)
    else:
        raise TermsError("Prize table: give a percentage for each rank.")
    if len(values) > MAX_PRIZE_RANKS:
        raise TermsError(f"Prize table: at most {MAX_PRIZE_RANKS} ranks.")
    percents = [_percent(value, f"Prize for rank {rank}", low=Decimal(0), high=Decimal(100), allow_low=False)
                for rank, value in enumerate(values, start=1)]
    total = sum(percents, Decimal(0))
    if total > 100:
        raise TermsError(f"Prize table: the percentages add up to {total} %, more than 100 %.")
    return [str(p) for p in percents]


def _markets(raw: Any) -> list[str]:
    from ..market.models import Market, MarketType

    if raw is None or raw == "":
        return []
    items = [part for part in re.split(r"[\s,]+", raw)] if isinstance(raw, str) else list(raw)
    names = []
    for item in items:
        name = str(item).strip().upper()
        if name and name not in names:
            names.append(name)
    types = {t.value for t in MarketType}
    symbols = [name for name in names if name not in types]
    if symbols:
        known = set(db.session.scalars(select(Market.symbol).where(Market.symbol.in_(symbols))))
        unknown = [name for name in symbols if name not in known]
        if unknown:
            raise TermsError(f"Allowed markets: unknown market {unknown[0]!r} (use a symbol from the markets "
                             f"board or a market type: {', '.join(sorted(types))}).")
    return names


def _leverage(raw: Any) -> dict[str, int]:
    limits = dict(DEFAULT_LEVERAGE)
    if raw in (None, "", {}):
        return limits
    if not isinstance(raw, Mapping):
        raise TermsError("Max leverage: give a limit per market class.")
    for key, value in raw.items():
        name = str(key).strip().upper()
        if name not in DEFAULT_LEVERAGE:
            raise TermsError(f"Max leverage: unknown market class {name!r} (use {', '.join(DEFAULT_LEVERAGE)}).")
        limits[name] = _int(value, f"Max leverage for {name}", low=1, high=MAX_LEVERAGE)
    return limits


def parse_terms(raw: Mapping[str, Any], current: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every term, parsed and checked together; ``current`` supplies the terms not given
    (an edit). Raises TermsError on the first problem."""
    given = {**(current or {}), **{k: v for k, v in raw.items() if k in TERM_FIELDS}}
    unknown = sorted(set(raw) - set(TERM_FIELDS))
    if unknown:
        raise TermsError(f"Unknown term {unknown[0]!r}.")
    terms: dict[str, Any] = {}
    terms["name"] = _text(given.get("name"), "Name", min_len=3, max_len=120)
    slug = (given.get("slug") or "").strip().lower() or re.sub(r"[^a-z0-9]+", "-", terms["name"].lower()).strip("-")
    if not SLUG.fullmatch(slug) or not 3 <= len(slug) <= 80:
        raise TermsError("Slug: 3 to 80 lowercase letters, digits and single hyphens (e.g. weekly-fx-cup).")
    terms["slug"] = slug
    terms["description"] = _text(given.get("description") or "", "Description", min_len=0, max_len=20_000)
    kind = str(given.get("kind") or CompetitionKind.CFD.value).strip().upper()
    if kind not in {k.value for k in CompetitionKind}:
        raise TermsError("Kind: CFD or RISE_FALL.")
    terms["kind"] = kind
    terms["entry_fee"] = _money(given.get("entry_fee", "0"), "Entry fee", allow_zero=True, limit=MAX_FEE)
    terms["starting_capital"] = _money(given.get("starting_capital", DEFAULT_CAPITAL), "Starting capital",
                                       allow_zero=False, limit=MAX_CAPITAL)
    terms["min_participants"] = _int(given.get("min_participants", 2), "Minimum participants", low=1,
                                     high=MAX_PARTICIPANTS)
    terms["max_participants"] = _int(given.get("max_participants", 100), "Maximum participants", low=1,
                                     high=MAX_PARTICIPANTS)
    if terms["max_participants"] < terms["min_participants"]:
        raise TermsError("Maximum participants must be at least the minimum.")
    for name, label in (("registration_opens_at", "Registration opens"), ("registration_closes_at", "Registration closes"),
                        ("start_at", "Start"), ("end_at", "End")):
        terms[name] = _time(given.get(name), label)
    if terms["end_at"] <= terms["start_at"]:
        raise TermsError("The end must be after the start.")
    if terms["registration_closes_at"] <= terms["registration_opens_at"]:
        raise TermsError("Registration must close after it opens.")
    if terms["registration_closes_at"] > terms["start_at"]:
        raise TermsError("Registration must close at or before the start.")
    terms["allowed_markets"] = _markets(given.get("allowed_markets"))
    terms["max_leverage"] = _leverage(given.get("max_leverage"))
    terms["margin_call_percent"] = _percent(given.get("margin_call_percent", "100"), "Margin-call level",
                                            low=Decimal(0), high=Decimal(1000), allow_low=False)
    terms["stop_out_percent"] = _percent(given.get("stop_out_percent", "50"), "Stop-out level",
                                         low=Decimal(0), high=Decimal(1000), allow_low=False)
    if terms["stop_out_percent"] >= terms["margin_call_percent"]:
        raise TermsError("The stop-out level must be below the margin-call level.")
    terms["platform_fee_percent"] = _percent(given.get("platform_fee_percent", "0"), "Platform fee",
                                             low=Decimal(0), high=Decimal(100))
    terms["prize_table"] = _prize_table(given.get("prize_table"))
    terms["guaranteed_pool"] = _money(given.get("guaranteed_pool") or "0", "Guaranteed pool", allow_zero=True,
                                      limit=MAX_FEE * 100)
    terms["prize_requires_trade"] = _bool(given.get("prize_requires_trade", True))
    terms["rebuys_allowed"] = _bool(given.get("rebuys_allowed", False))
    terms["max_rebuys"] = _int(given.get("max_rebuys", 0), "Rebuys", low=0, high=MAX_REBUYS)
    terms["rebuy_fee"] = _money(given.get("rebuy_fee") or "0", "Rebuy fee", allow_zero=True, limit=MAX_FEE)
    if terms["rebuys_allowed"] and terms["max_rebuys"] < 1:
        raise TermsError("Rebuys: allow at least one, or turn rebuys off.")
    if not terms["rebuys_allowed"]:
        terms["max_rebuys"], terms["rebuy_fee"] = 0, Decimal("0.00")
    terms["repeats"] = _repeats(given.get("repeats"))
    terms["freeze_minutes"] = _int(given.get("freeze_minutes") or 0, "Leaderboard freeze", low=0, high=MAX_FREEZE_MINUTES)
    if terms["freeze_minutes"] * 60 >= (terms["end_at"] - terms["start_at"]).total_seconds():
        raise TermsError("Leaderboard freeze: it must be shorter than the competition.")
    terms.update(_rule_set(given, terms))
    return terms


def _blank(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip())


def _rule_set(given: Mapping[str, Any], terms: Mapping[str, Any]) -> dict[str, Any]:
    """The rule set's terms: each blank is off; percents of the starting capital above 0
    and at most 100."""
    rules: dict[str, Any] = {}
    for name, label in (("max_daily_loss_percent", "Max daily loss"), ("max_total_loss_percent", "Max total loss")):
        raw = given.get(name)
        rules[name] = None if _blank(raw) else _percent(raw, label, low=Decimal(0), high=Decimal(100),
                                                        allow_low=False)
    for name, label, high in (("min_trading_days", "Min trading days", MAX_TRADING_DAYS),
                              ("max_open_positions", "Max open positions", MAX_OPEN_POSITIONS)):
        raw = given.get(name)
        rules[name] = None if _blank(raw) else _int(raw, label, low=1, high=high)
    raw = given.get("max_lots_per_order")
    rules["max_lots_per_order"] = None if _blank(raw) else parse_decimal(
        raw, "Max lots per order", places=2, minimum=Decimal(0), maximum=MAX_LOTS, above_minimum=True,
        example="5.00", error=TermsError)
    action = str(given.get("breach_action") or BreachAction.FLAG.value).strip().upper()
    if action not in {a.value for a in BreachAction}:
        raise TermsError("Breach action: DISQUALIFY or FLAG.")
    rules["breach_action"] = action
    spanned = (terms["end_at"].date() - terms["start_at"].date()).days + 1  # UTC days it trades on
    if rules["min_trading_days"] is not None and rules["min_trading_days"] > spanned:
        raise TermsError(f"Min trading days: the competition trades on {spanned} UTC day(s) only.")
    if terms["kind"] == CompetitionKind.RISE_FALL.value and any(
            rules[name] is not None for name in ("max_daily_loss_percent", "max_total_loss_percent",
                                                 "max_open_positions", "max_lots_per_order")):
        raise TermsError("Rule set: a rise/fall competition takes only the minimum trading days.")
    return rules


def _repeats(raw: Any) -> str | None:
    """None (a one-off), DAILY or WEEKLY."""
    text = str(raw or "").strip().upper()
    if text in ("", "NONE"):
        return None
    if text not in {r.value for r in Repeats}:
        raise TermsError("Repeats: none, daily or weekly.")
    return text


def current_terms(competition) -> dict[str, Any]:
    return {name: getattr(competition, name) for name in TERM_FIELDS}
