"""Platform settings through edutradex.settings (which validates), each change audited."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...extensions import db
from ...settings import SPECS, SettingError, get_setting, set_setting
from .audit import Actor, record_audit


@dataclass(frozen=True)
class SettingRow:
    key: str
    label: str
    value: Any
    text: str  # as the admin types it into the form


def display(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def current_settings() -> list[SettingRow]:
    return [SettingRow(spec.key, spec.label, value := get_setting(spec.key), display(value)) for spec in SPECS.values()]


def change_setting(actor: Actor, key: str, raw: str) -> tuple[Any, Any] | None:
    """Returns (before, after), or None when the value did not change (nothing recorded)."""
    if key not in SPECS:
        raise SettingError("No such setting.", status_code=404)
    try:
        before, after = set_setting(key, raw)
    except SettingError as err:  # say which setting: the page holds a form per setting
        db.session.rollback()
        label = SPECS[key].label  # the money parser's messages already start with it
        message = err.message if err.message.startswith(f"{label}:") else f"{label}: {err.message}"
        raise SettingError(message, status_code=err.status_code) from None
    if before == after:
        db.session.rollback()
        return None
    record_audit(actor, "setting.change", "setting", key, before={key: before}, after={key: after})
    db.session.commit()
    return before, after
