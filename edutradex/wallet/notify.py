"""Side effects that must follow a commit, never precede it: emails, jobs, live updates.

Services call ``after_commit(fn)`` inside their transaction and end it with ``commit()``:
``fn`` runs once the transaction has committed (outside it, so it may use the database or
run a job at once) and is dropped if the transaction rolls back."""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal

from flask import current_app
from flask_sqlalchemy.session import Session
from sqlalchemy import event

from ..core.events import user_room
from ..extensions import db, socketio
from ..mail import send_email

log = logging.getLogger(__name__)
_QUEUED = "wallet_after_commit"
_READY = "wallet_committed"


def after_commit(fn: Callable[[], None]) -> None:
    db.session.info.setdefault(_QUEUED, []).append(fn)


def commit() -> None:
    db.session.commit()
    ready = db.session.info.pop(_READY, [])
    for fn in ready:
        try:
            fn()
        except Exception:
            # The money moved and is committed; a lost email or live update must not
            # turn that into an error for the caller.
            log.exception("after-commit action %s failed", getattr(fn, "__name__", fn))


@event.listens_for(Session, "after_commit")
def _committed(session) -> None:
    session.info.setdefault(_READY, []).extend(session.info.pop(_QUEUED, []))


@event.listens_for(Session, "after_rollback")
def _rolled_back(session) -> None:
    session.info.pop(_QUEUED, None)


def live_update(user_id: int, balance: Decimal | None, message: str | None = None, category: str = "success") -> None:
    room = user_room(user_id)
    socketio.emit("wallet", {"balance": None if balance is None else str(balance)}, to=room)
    if message:
        socketio.emit("notice", {"message": message, "category": category}, to=room)


def email_user(email: str, subject: str, template: str, job_key: str, **context) -> None:
    """One email per business event: the job id comes from the event (e.g. deposit 12
    completed), so a repeated notification for the same event is sent once in RQ mode."""
    context.setdefault("site_name", current_app.config["SITE_NAME"])
    send_email(email, subject, template, job_id=f"email-{job_key}", **context)
