"""Tells the feed loop that market config changed, so it reloads before its next tick
instead of waiting for the periodic reload.

A change is marked on the session and announced only after that session commits: the feed
then reads the committed row. The announcement is a version number, in this process (the
embedded default) and in Redis (a separate feed process)."""

from __future__ import annotations

import itertools
import logging

from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

REDIS_KEY = "edutradex:market-config-version"
_FLAG = "market_config_changed"
_local_counter = itertools.count(1)
_local_version = 0


def mark_changed(session: Session) -> None:
    session.info[_FLAG] = True


def announce() -> None:
    global _local_version
    _local_version = next(_local_counter)
    if has_app_context() and current_app.config.get("REDIS_URL"):
        from .. import jobs

        try:
            jobs.redis_connection().incr(REDIS_KEY)
        except Exception:  # noqa: BLE001 - the periodic reload still picks the change up
            log.warning("could not announce a market config change through Redis", exc_info=True)


def version() -> tuple[int, int]:
    """(local, shared) versions; the feed reloads when either moves."""
    shared = 0
    if has_app_context() and current_app.config.get("REDIS_URL"):
        from .. import jobs

        shared = int(jobs.redis_connection().get(REDIS_KEY) or 0)
    return _local_version, shared


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop(_FLAG, False):
        announce()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_FLAG, None)
