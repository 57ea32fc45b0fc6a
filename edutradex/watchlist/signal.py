"""Tells the price authority that some watchlist changed, so its watchlist rooms
(broadcast.py) are re-read before the next flush. Announced after the change commits: a
version number in this process (the embedded default) and in Redis (a separate feed); the
signal itself is change_signal.py's."""

from __future__ import annotations

import itertools
import logging

from ..change_signal import ChangeSignal

log = logging.getLogger(__name__)

REDIS_KEY = "edutradex:watchlist-version"
_FLAG = "watchlist_changed"
_local_counter = itertools.count(1)
_local_version = 0


def announce() -> None:
    global _local_version
    _local_version = next(_local_counter)
    _signal.bump_shared()


_signal = ChangeSignal(redis_key=REDIS_KEY, flag=_FLAG, what="a watchlist change", log=log,
                       on_commit=lambda: announce())
mark_changed = _signal.mark_changed


def local_version() -> int:
    return _local_version


def shared_version() -> int:
    """The version in Redis (a round trip; 0 without Redis)."""
    return _signal.shared_version()


def version() -> tuple[int, int]:
    return local_version(), shared_version()
