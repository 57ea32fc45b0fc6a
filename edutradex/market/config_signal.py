"""Tells the feed loop that market config changed, so it reloads before its next tick
instead of waiting for the periodic reload.

A change is marked on the session and announced only after that session commits: the feed
then reads the committed row. The announcement is a version number, in this process (the
embedded default) and in Redis (a separate feed process); the signal itself is
change_signal.py's."""

from __future__ import annotations

import itertools
import logging

from ..change_signal import ChangeSignal

log = logging.getLogger(__name__)

REDIS_KEY = "edutradex:market-config-version"
_FLAG = "market_config_changed"
_local_counter = itertools.count(1)
_local_version = 0


def announce() -> None:
    global _local_version
    _local_version = next(_local_counter)
    _signal.bump_shared()


_signal = ChangeSignal(redis_key=REDIS_KEY, flag=_FLAG, what="a market config change", log=log,
                       on_commit=lambda: announce())
mark_changed = _signal.mark_changed


def version() -> tuple[int, int]:
    """(local, shared) versions; the feed reloads when either moves."""
    return _local_version, _signal.shared_version()
