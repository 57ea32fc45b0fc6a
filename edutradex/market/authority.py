"""The price-authority lock: exactly one process produces ticks, even when a lock is lost.

Three layers, each covering what the one before cannot:
1. A Redis lease (redis-py's `Lock`: acquire, extend and release are atomic Lua scripts
   that act only while the key still holds this holder's token).
2. A deadline on this process's monotonic clock. The lease is taken or extended at a
   moment measured *before* the request went out, so Redis expires it no earlier than
   that moment + TTL; the holder stops producing at that moment + TTL - margin. A holder
   that was paused (SIGSTOP, a long GC, a frozen VM) finds its deadline passed when it
   resumes and stops before it makes another tick.
3. Fencing, for the writes that a paused holder may already have been in the middle of:
   - the tick store: each acquisition raises `feed_authority.epoch` (in the database), and
     every tick flush updates that row `WHERE epoch = <mine>` in its own transaction, so
     once the next holder took over no flush of the old one commits (PostgreSQL: the row
     lock orders the two; SQLite: one writer at a time);
   - the latest quote and the heartbeat in Redis: written by a script that first checks
     that the lock key still holds this holder's token.

Without Redis (the embedded default) there is one process; the lease always succeeds and
only the database fence applies.

Web processes may stand by for the authority too: `AuthorityLock(app).acquire()` is a
non-blocking try, `held()` says whether it may still produce, `renew()` keeps it (or raises
AuthorityLost), `release()` gives it up."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

from flask import Flask

from . import store

log = logging.getLogger(__name__)

LOCK_KEY = "edutradex:feed:lock"

# SET a key only while the lock key still holds the caller's token (KEYS: lock, key;
# ARGV: token, value, px or "0").
FENCED_SET = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then
    return 0
end
if ARGV[3] ~= '0' then
    redis.call('set', KEYS[2], ARGV[2], 'PX', ARGV[3])
else
    redis.call('set', KEYS[2], ARGV[2])
end
return 1
"""


class AuthorityLost(RuntimeError):
    """This process may no longer produce ticks: another one holds (or may hold) the authority."""


class AuthorityLock:
    ttl = 5.0  # seconds the Redis lease lasts without a renewal
    margin = 1.0  # stop producing this long before the lease could have expired
    renew_every = 1.0

    def __init__(self, app: Flask, *, ttl: float | None = None, margin: float | None = None,
                 monotonic: Callable[[], float] = time.monotonic):
        self.app = app
        self.monotonic = monotonic
        if ttl is not None:
            self.ttl, self.renew_every = ttl, ttl / 5
        if margin is not None:
            self.margin = margin
        self.redis = None
        self.lease = None
        if app.config["REDIS_URL"]:
            from redis import Redis

            self.redis = Redis.from_url(app.config["REDIS_URL"])
            # thread_local=False: the token must be visible to every task of this process
            self.lease = self.redis.lock(LOCK_KEY, timeout=self.ttl, blocking=False, thread_local=False)
            self._fenced_set = self.redis.register_script(FENCED_SET)
        self.epoch: int | None = None
        self.valid_until: float | None = None
        self.next_renew = 0.0

    # ---- the lease ----------------------------------------------------------------------
    def acquire(self, now_ms: int) -> bool:
        """Try once, without waiting. On success the tick store is fenced against every
        earlier holder, and this holder's epoch is `self.epoch`."""
        from redis.exceptions import RedisError

        started = self.monotonic()
        if self.lease is not None:
            try:
                if not self.lease.acquire(blocking=False):
                    return False
            except RedisError:
                log.exception("could not reach Redis for the price-authority lock")
                return False
        self.valid_until = started + self.ttl - self.margin if self.lease is not None else math.inf
        self.next_renew = started + self.renew_every
        try:
            self.epoch = store.take_authority(now_ms)
        except Exception:
            log.exception("could not raise the tick store's epoch; giving the lock back")
            self.release()
            return False
        if not self.held():  # the database kept us waiting past the deadline
            self.release()
            return False
        return True

    def held(self) -> bool:
        return self.valid_until is not None and self.monotonic() < self.valid_until

    def check(self) -> None:
        if not self.held():
            raise AuthorityLost("the price-authority lease ran out before it was renewed")

    def renew(self) -> None:
        """Extend the lease when due. Raises AuthorityLost when it is late or refused: the
        caller must stop producing at once."""
        from redis.exceptions import LockError, RedisError

        self.check()
        now = self.monotonic()
        if self.lease is None or now < self.next_renew:
            return
        try:
            self.lease.extend(self.ttl, replace_ttl=True)
        except (LockError, RedisError) as exc:
            self.valid_until = None
            raise AuthorityLost(f"could not renew the price-authority lease: {exc}") from exc
        self.valid_until = now + self.ttl - self.margin
        self.next_renew = now + self.renew_every

    def release(self) -> None:
        from redis.exceptions import LockError, RedisError

        self.valid_until = None
        if self.lease is None or self.lease.local.token is None:
            return
        try:
            self.lease.release()
        except (LockError, RedisError):
            pass  # expired or taken over already: nothing of ours to release

    # ---- fenced Redis writes -------------------------------------------------------------
    def fenced_set(self, key: str, value: str, px: int | None = None) -> None:
        """SET key (optionally with a TTL in ms) only while this holder still owns the lock."""
        if self.redis is None:
            raise RuntimeError("fenced_set needs Redis")
        self.check()
        token = self.lease.local.token
        if token is None or not self._fenced_set(keys=[LOCK_KEY, key], args=[token, value, px or 0]):
            self.valid_until = None
            raise AuthorityLost("another process holds the price-authority lock")
