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
