"""record_audit(): the one way an admin action is written to the audit log."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Select, select

from ...extensions import db
from ...parsing import within_days
from ..models import AdminAuditEntry

T = TypeVar("T")


@dataclass(frozen=True)
class Actor:
    """Who acts: the admin's user id and the address the request came from."""

    user_id: int
    ip: str | None = None


def jsonable(value: Any) -> Any:
    """Decimals as strings (exact), times as ISO 8601, enums as their value."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    return value


def record_audit(actor: Actor, action: str, target_type: str, target_id: Any = None, *,
                 before: Any = None, after: Any = None, note: str | None = None) -> AdminAuditEntry:
    """Add an audit entry to the current transaction. The caller commits it together with
    the action, so an action is never in effect without its entry (nor the reverse)."""
    entry = AdminAuditEntry(
        actor_id=actor.user_id,
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        before=jsonable(before),
        after=jsonable(after),
        note=note,
        ip=actor.ip,
    )
    db.session.add(entry)
    return entry


def audited(actor: Actor, action: str, target_type: str, target_id: Any, *, before: Any, after: Any,
            perform: Callable[[], T], note: str | None = None) -> T:
    """Record the entry, then run a feature service that commits its own transaction: the
    entry is already in the session, so it commits with the action, and a failing action
    (which raises) is rolled back together with its entry."""
    record_audit(actor, action, target_type, target_id, before=before, after=after, note=note)
    try:
        result = perform()
    except BaseException:
        db.session.rollback()
        raise
    db.session.commit()  # a no-op when the service committed; commits when it left that to us
    return result


@dataclass(frozen=True)
class AuditFilters:
    actor: str = ""  # an email fragment or a user id
    action: str = ""
    target_type: str = ""
    target_id: str = ""
    since: date | None = None
    until: date | None = None  # inclusive


def audit_query(filters: AuditFilters) -> Select:
    from ...auth.models import User

    query = select(AdminAuditEntry).order_by(AdminAuditEntry.created_at.desc(), AdminAuditEntry.id.desc())
    if filters.actor:
        if filters.actor.isdigit():
            query = query.where(AdminAuditEntry.actor_id == int(filters.actor))
        else:
            actor_ids = select(User.id).where(User.email.ilike(f"%{_escape_like(filters.actor)}%", escape="\\"))
            query = query.where(AdminAuditEntry.actor_id.in_(actor_ids))
    if filters.action:
        query = query.where(AdminAuditEntry.action == filters.action)
    if filters.target_type:
        query = query.where(AdminAuditEntry.target_type == filters.target_type)
    if filters.target_id:
        query = query.where(AdminAuditEntry.target_id == filters.target_id)
    return query.where(*within_days(AdminAuditEntry.created_at, filters.since, filters.until))


def known_actions() -> list[str]:
    return list(db.session.scalars(select(AdminAuditEntry.action).distinct().order_by(AdminAuditEntry.action)))


def known_target_types() -> list[str]:
    return list(db.session.scalars(select(AdminAuditEntry.target_type).distinct().order_by(AdminAuditEntry.target_type)))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# ---- reading an entry: what changed, as a before/after table -------------------------------

# Labels for the fields that admin actions record, beyond the markets' and the settings' own.
FIELD_LABELS = {
    "active": "Active", "demo_balance": "Demo balance", "credit_balance": "Credit balance", "amount": "Amount",
    "role": "Role", "status": "Status", "user_id": "User", "reason": "Reason",
}


@dataclass(frozen=True)
class AuditChange:
    field: str  # the label people know the field by
    before: str
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


def _label(entry: AdminAuditEntry, key: str) -> str:
    if entry.target_type == "setting":
        from ...settings import SPECS

        if key in SPECS:
            return SPECS[key].label
    if entry.target_type == "market":
        from ...market.service import FIELD_LABELS as MARKET_LABELS

        if key in MARKET_LABELS:
            return MARKET_LABELS[key]
    return FIELD_LABELS.get(key) or key.replace("_", " ").capitalize()


def _shown(value: Any, present: bool) -> str:
    if not present or value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_shown(v, True) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_shown(v, True)}" for k, v in value.items())
    return str(value)


def audit_changes(entry: AdminAuditEntry) -> list[AuditChange]:
    """One row per recorded field, in the order recorded (before's fields first): its label,
    the value before and the value after ("—" where a side did not record it)."""
    before, after = entry.before, entry.after
    if not isinstance(before, dict) or not isinstance(after, dict):
        if before is None and after is None:
            return []
        return [AuditChange("Value", _shown(before, True), _shown(after, True))]
    keys = list(before) + [key for key in after if key not in before]
    return [AuditChange(_label(entry, key), _shown(before.get(key), key in before), _shown(after.get(key), key in after))
            for key in keys]
