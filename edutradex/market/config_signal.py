"""Tells the feed loop that market config changed, so it reloads before its next tick
instead of waiting for the periodic reload.

A change is marked on the session and announced only after that session commits: the feed
then reads the committed row. The announcement is a version number, in this process (the
embedded default) and in Redis (a separate feed process); the signal itself is
change_signal.py's.

Within one web request the shared version is read from Redis once and remembered for the
rest of that request (`flask.g`): a placement and the fragment it renders see one catalogue,
and an edit committed anywhere before the request started applies to it. Long-lived app
contexts (the feed loop) have no request and read Redis every time."""

from __future__ import annotations

import itertools
import logging

from flask import g, has_request_context

from ..change_signal import ChangeSignal

log = logging.getLogger(__name__)

REDIS_KEY = "edutradex:market-config-version"
_FLAG = "market_config_changed"
_local_counter = itertools.count(1)
_local_version = 0
_G_SHARED = "market_config_shared_version"


def announce() -> None:
    global _local_version
    _local_version = next(_local_counter)
    _signal.bump_shared()


_signal = ChangeSignal(redis_key=REDIS_KEY, flag=_FLAG, what="a market config change", log=log,
                       on_commit=lambda: announce())
mark_changed = _signal.mark_changed


def version() -> tuple[int, int]:
    """(local, shared) versions; the feed reloads when either moves. The shared one is read
    once per request (see the module's docstring)."""
    if has_request_context() and _G_SHARED in g:
        return _local_version, g.get(_G_SHARED)
    shared = _signal.shared_version()
    if has_request_context() and _signal.redis() is not None:
        setattr(g, _G_SHARED, shared)
    return _local_version, shared


def remember_shared(raw: bytes | str | int | None) -> int:
    """The shared version as read from Redis (by `version()` or by a batched read such as
    market.hot.placement_reads), kept for the rest of the current request."""
    shared = int(raw or 0)
    if has_request_context():
        setattr(g, _G_SHARED, shared)
    return shared
