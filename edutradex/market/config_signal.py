"""Tells the feed loop that market config changed, so it reloads before its next tick
instead of waiting for the periodic reload.

A change is marked on the session and announced only after that session commits: the feed
then reads the committed row. The announcement is a version number, in this process (the
embedded default) and in Redis (a separate feed process).

Within one web request the shared version is read from Redis once and remembered for the
rest of that request (`flask.g`): a placement and the fragment it renders see one catalogue,
and an edit committed anywhere before the request started applies to it. Long-lived app
contexts (the feed loop) have no request and read Redis every time."""

from __future__ import annotations

import itertools
import logging

from flask import current_app, g, has_app_context, has_request_context
from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

REDIS_KEY = "edutradex:market-config-version"
_FLAG = "market_config_changed"
_local_counter = itertools.count(1)
_local_version = 0
_G_SHARED = "market_config_shared_version"


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
    """(local, shared) versions; the feed reloads when either moves. The shared one is read
    once per request (see the module's docstring)."""
    shared = 0
    if has_app_context() and current_app.config.get("REDIS_URL"):
        in_request = has_request_context()
        if in_request and _G_SHARED in g:
            return _local_version, g.get(_G_SHARED)
        from .. import jobs

        shared = remember_shared(jobs.redis_connection().get(REDIS_KEY)) if in_request else \
            int(jobs.redis_connection().get(REDIS_KEY) or 0)
    return _local_version, shared


def remember_shared(raw: bytes | str | int | None) -> int:
    """The shared version as read from Redis (by `version()` or by a batched read such as
    market.hot.placement_reads), kept for the rest of the current request."""
    shared = int(raw or 0)
    if has_request_context():
        setattr(g, _G_SHARED, shared)
    return shared


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop(_FLAG, False):
        announce()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_FLAG, None)
