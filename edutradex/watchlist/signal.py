"""Tells the price authority that some watchlist changed, so its watchlist rooms
(broadcast.py) are re-read before the next flush. Announced after the change commits: a
version number in this process (the embedded default) and in Redis (a separate feed)."""

from __future__ import annotations

import itertools
import logging

from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

REDIS_KEY = "edutradex:watchlist-version"
_FLAG = "watchlist_changed"
_local_counter = itertools.count(1)
_local_version = 0


def mark_changed(session: Session) -> None:
    session.info[_FLAG] = True


def _redis():
    if has_app_context() and current_app.config.get("REDIS_URL"):
        from .. import jobs

        return jobs.redis_connection()
    return None


def announce() -> None:
    global _local_version
    _local_version = next(_local_counter)
    try:
        redis = _redis()
        if redis is not None:
            redis.incr(REDIS_KEY)
    except Exception:  # noqa: BLE001 - the periodic re-read still picks the change up
        log.warning("could not announce a watchlist change through Redis", exc_info=True)


def local_version() -> int:
    return _local_version


def shared_version() -> int:
    """The version in Redis (a round trip; 0 without Redis)."""
    redis = _redis()
    return int(redis.get(REDIS_KEY) or 0) if redis is not None else 0


def version() -> tuple[int, int]:
    return local_version(), shared_version()


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop(_FLAG, False):
        announce()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_FLAG, None)
