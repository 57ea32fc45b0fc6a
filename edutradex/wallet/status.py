"""Status changes as conditional updates: ``UPDATE ... SET status = :new WHERE id = :id AND
status IN (:expected)``. The database decides who wins a race (a cancel against an approve,
a webhook against a job), on every database: PostgreSQL re-checks the condition once the
row lock is free, SQLite has one writer at a time. ``SELECT ... FOR UPDATE`` would not do:
SQLite ignores it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, update

from ..errors import Conflict, NotFound
from ..extensions import db


def transition(model: type, row_id: int, expected: Iterable[str], new: str, **values: Any) -> bool:
    """Move the row to ``new`` if its status is one of ``expected``; True when this call
    made the change (the caller then does what the change implies, in the same
    transaction). Objects in the session are refreshed on their next access."""
    statement = (update(model).where(model.id == row_id, model.status.in_(list(expected)))
                 .values(status=new, **values).execution_options(synchronize_session=False))
    changed = db.session.execute(statement).rowcount == 1
    loaded = db.session.identity_map.get(db.session.identity_key(model, row_id))
    if loaded is not None:
        db.session.expire(loaded)
    return changed


def refuse(model: type, row_id: int, what: str, verb: str) -> None:
    """Raise the error a lost transition deserves: NotFound, or Conflict naming the status
    the row is really in."""
    status = db.session.scalar(select(model.status).where(model.id == row_id))
    if status is None:
        raise NotFound(f"No such {what}.")
    raise Conflict(f"This {what} is already {status} and cannot be {verb}.")
