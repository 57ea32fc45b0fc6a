"""Emits through the Socket.IO message queue (Redis) in one round trip.

With `message_queue` set, every `socketio.emit` is one PUBLISH, a round trip to Redis: a
settlement batch of 5,000 trades announces 6,000 results and balances, seconds of round
trips in the process that settles. Inside `one_round_trip()`, this thread's emits are
collected and sent in one pipeline when the block ends, in order. Other threads' emits are
not held back. It wraps python-socketio's RedisManager._publish (pinned in
requirements.txt; tests/test_message_queue.py pins the behaviour)."""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager

from .extensions import socketio

log = logging.getLogger(__name__)

_pending = threading.local()


@contextmanager
def one_round_trip():
    manager = getattr(socketio.server, "manager", None)
    if not _batchable(manager) or getattr(_pending, "messages", None) is not None:
        yield  # rooms in this process (no queue), or already inside a block
        return
    _pending.messages = []
    try:
        yield
    finally:
        messages, _pending.messages = _pending.messages, None
        if messages:
            _publish_all(manager, messages)


def _batchable(manager) -> bool:
    from socketio import RedisManager

    if not isinstance(manager, RedisManager):
        return False
    if not getattr(manager, "_edutradex_batching", False):
        publish_one = manager._publish

        def publish(data):
            messages = getattr(_pending, "messages", None)
            if messages is None:
                return publish_one(data)
            messages.append(data)

        manager._publish = publish
        manager._edutradex_batching = True
    return True


def _publish_all(manager, messages: list[dict]) -> None:
    payloads = [manager.json.dumps(data) for data in messages]
    for attempt in (1, 2):
        try:
            if not manager.connected:
                manager._redis_connect()
            with manager.redis.pipeline(transaction=False) as pipe:
                for payload in payloads:
                    pipe.publish(manager.channel, payload)
                pipe.execute()
            return
        except Exception:  # noqa: BLE001 - as RedisManager._publish: reconnect once, then give up
            manager.connected = False
            if attempt == 2:
                log.exception("could not publish %d Socket.IO messages to Redis", len(payloads))
