import json
import time

import pytest

from edutradex.extensions import socketio
from edutradex.message_queue import one_round_trip
from tests.conftest import build_app

pytestmark = pytest.mark.redis


@pytest.fixture
def queued(tmp_path, redis_url, monkeypatch):
    """An app on the Redis message queue, a subscriber to its channel, and the count of
    PUBLISH commands sent one by one."""
    from redis import Redis

    app = build_app(f"sqlite:///{tmp_path / 'q.db'}", REDIS_URL=redis_url)
    manager = socketio.server.manager
    subscriber = Redis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
    subscriber.subscribe(manager.channel)
    single = []
    manager._redis_connect()  # it connects at the first emit
    publish = manager.redis.publish
    monkeypatch.setattr(manager.redis, "publish", lambda *args: single.append(args) or publish(*args))

    def received(count: int) -> list[dict]:
        messages, deadline = [], time.monotonic() + 5
        while len(messages) < count and time.monotonic() < deadline:
            message = subscriber.get_message(timeout=0.1)
            if message:
                messages.append(json.loads(message["data"]))
        return messages

    yield app, single, received
    subscriber.close()


def test_emits_in_a_block_reach_redis_in_order_in_one_pipeline(queued):
    app, single, received = queued
    with app.app_context(), one_round_trip():
        for n in range(50):
            socketio.emit("trade_settled", {"n": n}, to=f"user:{n}")
        assert received(1) == []  # held until the block ends
    messages = received(50)
    assert [(m["event"], m["data"], m["room"]) for m in messages] == [
        ("trade_settled", [{"n": n}], f"user:{n}") for n in range(50)]
    assert single == []


def test_emits_outside_a_block_are_published_at_once(queued):
    app, single, received = queued
    with app.app_context():
        socketio.emit("balance", {"demo_balance": "1.00"}, to="user:1")
    assert [m["data"] for m in received(1)] == [[{"demo_balance": "1.00"}]]
    assert len(single) == 1


def test_the_leaderboards_own_frames_go_out_in_one_pipeline(queued):
    """Each participant's own rank and equity (`leaderboard_me` over `user:<id>`): one
    PUBLISH each cost the price authority ~1 s per second at 10,000 participants."""
    from edutradex.competitions import leaderboard

    app, single, received = queued
    ranks = {pid: pid for pid in range(1, 201)}
    with app.app_context():
        leaderboard._send_batch(leaderboard.Publisher(), 7, False, {}, ranks, {pid: 1000 + pid for pid in ranks},
                                {pid: 1_000_000 + pid for pid in ranks})
    messages = received(200)
    assert [(m["room"], m["data"][0]["rank"]) for m in messages] == [(f"user:{1000 + pid}", pid) for pid in ranks]
    assert single == []
