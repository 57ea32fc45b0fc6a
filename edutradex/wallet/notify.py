"""Side effects that must follow a commit, never precede it: emails and live updates.

Services call ``after_commit(fn)`` inside their transaction; ``fn`` runs once the
transaction commits and is dropped if it rolls back."""

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
_KEY = "wallet_after_commit"


def after_commit(fn: Callable[[], None]) -> None:
    db.session.info.setdefault(_KEY, []).append(fn)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session) -> None:
    for fn in session.info.pop(_KEY, []):
        try:
            fn()
        except Exception:
            # The money moved and is committed; a lost email or live update must not
            # turn that into an error for the caller.
            log.exception("after-commit action %s failed", getattr(fn, "__name__", fn))


@event.listens_for(Session, "after_rollback")
def _drop_after_rollback(session) -> None:
    session.info.pop(_KEY, None)


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
