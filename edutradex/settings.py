"""Platform settings that admins change at run time (validated key/value rows), falling
back to the app config. Every feature reads tunables through get_setting()."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import String, Text, event, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from .errors import DomainError
from .extensions import db
from .parsing import parse_decimal
from .types import UTCDateTime, utcnow


class Setting(db.Model):
    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)  # JSON
    updated_at: Mapped[Any] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class SettingError(DomainError):
    pass


@dataclass(frozen=True)
class SettingSpec:
    key: str
    label: str
    config_key: str
    parse: Callable[[str], Any]  # from a form string to the value; raises SettingError
    dump: Callable[[Any], Any] = lambda v: v  # to JSON
    load: Callable[[Any], Any] = lambda v: v  # from JSON


def _decimal_range(label: str, low: Decimal, high: Decimal, places: int = 2) -> Callable[[str], Decimal]:
    def parse(raw: str) -> Decimal:
        return parse_decimal(raw, label, places=places, minimum=low, maximum=high, error=SettingError)

    return parse


def _int_range(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(str(raw).strip())
        except ValueError:
            raise SettingError("Enter a whole number.") from None
        if not low <= value <= high:
            raise SettingError(f"Enter a whole number from {low} to {high}.")
        return value

    return parse


def _durations(raw: str) -> list[int]:
    try:
        values = sorted({int(part) for part in str(raw).replace(",", " ").split()})
    except ValueError:
        raise SettingError("Enter durations in seconds, separated by commas (e.g. 5, 15, 60).") from None
    if not values or any(v < 1 or v > 86400 for v in values):
        raise SettingError("Each duration must be from 1 to 86400 seconds.")
    return values


def _text(max_len: int) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = str(raw).strip()
        if not value or len(value) > max_len:
            raise SettingError(f"Enter 1 to {max_len} characters.")
        return value

    return parse


def _colour(raw: str) -> str:
    value = str(raw).strip()
    if len(value) != 7 or value[0] != "#" or any(c not in "0123456789abcdefABCDEF" for c in value[1:]):
        raise SettingError("Enter a colour as #RRGGBB.")
    return value.lower()


SPECS: dict[str, SettingSpec] = {
    spec.key: spec
    for spec in (
        SettingSpec("default_demo_balance", "Default demo balance", "DEFAULT_DEMO_BALANCE",
                    _decimal_range("Default demo balance", Decimal("1"), Decimal("10000000")), dump=str, load=Decimal),
        SettingSpec("default_payout_percent", "Default payout %", "DEFAULT_PAYOUT_PERCENT",
                    _decimal_range("Default payout %", Decimal("1"), Decimal("100")), dump=str, load=Decimal),  # as a market's
        SettingSpec("allowed_durations", "Allowed durations (seconds)", "ALLOWED_DURATIONS", _durations),
        SettingSpec("max_open_trades", "Maximum open trades per user", "MAX_OPEN_TRADES", _int_range(1, 1000)),
        SettingSpec("site_name", "Site name", "SITE_NAME", _text(40)),
        SettingSpec("accent_colour", "Accent colour", "ACCENT_COLOUR", _colour),
    )
}


# Settings are read on every request (trade limits, branding) and change rarely, so each
# app keeps them in memory: reloaded in one query when this process changed one, and at
# least every CACHE_SECONDS so that a change made in another web process is seen too.
CACHE_SECONDS = 2.0


def _stored_settings() -> dict[str, Any]:
    cache = current_app.extensions.setdefault("settings_cache", {"loaded_at": None, "values": {}})
    now = time.monotonic()
    if cache["loaded_at"] is None or now - cache["loaded_at"] > CACHE_SECONDS:
        rows = db.session.execute(select(Setting.key, Setting.value)).all()
        cache["values"] = {key: SPECS[key].load(json.loads(value)) for key, value in rows if key in SPECS}
        cache["loaded_at"] = now
    return cache["values"]


def forget_cached_settings() -> None:
    current_app.extensions.pop("settings_cache", None)


def get_setting(key: str) -> Any:
    spec = SPECS[key]
    stored = _stored_settings()
    if key in stored:
        return stored[key]
    return current_app.config[spec.config_key]


def set_setting(key: str, raw: str) -> tuple[Any, Any]:
    """Validate and store; returns (before, after). The caller commits."""
    if key not in SPECS:
        raise SettingError(f"Unknown setting {key!r}.")
    spec = SPECS[key]
    before = get_setting(key)
    value = spec.parse(raw)
    row = db.session.get(Setting, key)
    if row is None:
        row = Setting(key=key, value="null")
        db.session.add(row)
    row.value = json.dumps(spec.dump(value))
    # Cached values reload on the next read (the session sees this change at once; other
    # sessions once it is committed).
    db.session.info.setdefault(_CHANGED, True)
    forget_cached_settings()
    return before, value


_CHANGED = "settings_changed"


@event.listens_for(Session, "after_commit")
def _forget_after_commit(session: Session) -> None:
    # Another request of this process may have reloaded the cache between set_setting and
    # the commit: forget it again once the change is visible to everyone.
    if session.info.pop(_CHANGED, False) and has_app_context():
        forget_cached_settings()
