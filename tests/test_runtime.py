"""A web process with Redis stands in for an absent `feed` process: it starts every
background service, together, when no process holds the price-authority lock."""

from __future__ import annotations

import threading
import time

import pytest

from edutradex import jobs, runtime
from edutradex.market.feed import LOCK_KEY
from tests.conftest import build_app
from tests.support.waiting import wait_for

pytestmark = pytest.mark.redis


def test_every_service_starts_together_when_the_authority_is_vacant(tmp_path, redis_url):
    app = build_app(f"sqlite:///{tmp_path / 'r.db'}", REDIS_URL=redis_url)
    with app.app_context():
        redis = jobs.redis_connection()
    redis.set(LOCK_KEY, "a feed process", px=60_000)
    started, hold = [], threading.Event()

    def feed(app):  # takes the lock at once, as PriceFeed.run does
        redis.set(LOCK_KEY, "this process", px=60_000)
        started.append("feed")
        hold.wait(30)

    def clock(app):
        started.append("clock")
        hold.wait(30)

    app.extensions["background_services"][:] = [feed, clock]
    runtime.start_web_services(app)
    try:
        time.sleep(2.5)  # a few looks at the lock while the feed process holds it
        assert started == []

        redis.delete(LOCK_KEY)  # the feed process is gone
        wait_for(lambda: len(started) == 2, timeout=10, message="both services")
        # the clock started although this process's own feed took the lock first
        assert sorted(started) == ["clock", "feed"]
        time.sleep(2.5)
        assert len(started) == 2  # running services are not started twice
    finally:
        runtime.stop_web_services(app)
        hold.set()
        redis.delete(LOCK_KEY)
