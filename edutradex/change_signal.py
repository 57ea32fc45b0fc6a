"""A change signal: "something changed, re-read it", announced only after the session that
made the change commits (so the reader sees the committed rows). The announcement is a
version number: one in this process (kept by the user of the signal: the embedded feed) and
one in Redis when REDIS_URL is set (a separate feed process). Used by market/config_signal.py
(market config -> the feed reloads its catalogue) and watchlist/signal.py (watchlists -> the
feed re-reads its watchlist rooms)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session


class ChangeSignal:
    """``mark_changed(session)`` flags the session; when it commits, ``on_commit`` runs (the
    user's announce: its local version, then ``bump_shared``); a rollback drops the flag."""

    def __init__(self, *, redis_key: str, flag: str, what: str, log: logging.Logger,
                 on_commit: Callable[[], None]):
        self.redis_key = redis_key
        self.flag = flag
        self.what = what  # for the log: "a watchlist change"
        self.log = log

        def after_commit(session: Session) -> None:
            if session.info.pop(flag, False):
                on_commit()

        def after_rollback(session: Session) -> None:
            session.info.pop(flag, None)

        event.listen(Session, "after_commit", after_commit)
        event.listen(Session, "after_rollback", after_rollback)

    def mark_changed(self, session: Session) -> None:
        session.info[self.flag] = True

    @staticmethod
    def redis():
        """The Redis connection, None without an app context or without REDIS_URL."""
        if has_app_context() and current_app.config.get("REDIS_URL"):
            from . import jobs

            return jobs.redis_connection()
        return None

    def bump_shared(self) -> None:
        """Move the version in Redis (a failure is logged: the periodic re-read still picks
        the change up)."""
        try:
            redis = self.redis()
            if redis is not None:
                redis.incr(self.redis_key)
        except Exception:  # noqa: BLE001 - the periodic re-read still picks the change up
            self.log.warning("could not announce %s through Redis", self.what, exc_info=True)

    def shared_version(self) -> int:
        """The version in Redis (a round trip; 0 without Redis)."""
        redis = self.redis()
        return int(redis.get(self.redis_key) or 0) if redis is not None else 0
