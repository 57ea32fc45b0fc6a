"""In the production shape (quotes, heartbeat and config version in Redis) one placement
costs ONE Redis round trip (market/hot.py), with every guarantee kept: stale quote, paused
market and skewed clocks refused, and an admin's edit made in another process applied to
the next placement."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
from redis import Redis
from redis.connection import Connection
from sqlalchemy import select, update

from edutradex.binary.models import Trade
from edutradex.extensions import db
from edutradex.market import config_signal, feed, quotes
from edutradex.market.models import Market
from tests.binary.conftest import make_market, publish
from tests.conftest import build_app
from tests.factories import make_user
from tests.support.web import AuthActions

pytestmark = pytest.mark.redis
SYMBOL = "OTC_EUR_USD"
KEY_INPUT = re.compile(r'id="idempotency-key" name="idempotency_key" value="([^"]+)"')


class RoundTrips:
    """What this process sends to Redis: one packed send per command, one per pipeline."""

    def __init__(self, monkeypatch):
        self.sent: list = []
        original = Connection.send_packed_command

        def counting(conn, command, check_health=True):
            self.sent.append(command)
            return original(conn, command, check_health)

        monkeypatch.setattr(Connection, "send_packed_command", counting)


def executed_commands(redis: Redis) -> dict[str, int]:
    """The server's own count of the commands it executed, by command (INFO itself left out)."""
    return {k.removeprefix("cmdstat_"): v["calls"] for k, v in redis.info("commandstats").items()
            if k != "cmdstat_info"}


@pytest.fixture
def desk(tmp_path, redis_url):
    """A logged-in trader on an app whose quotes, heartbeat and config version live in Redis."""
    app = build_app(f"sqlite:///{tmp_path / 'hot.db'}", REDIS_URL=redis_url)
    client = app.test_client()
    auth = AuthActions(client)
    with app.app_context():
        make_market(SYMBOL)
        make_user("joe@example.com")
    auth.login()
    yield app, client, auth, Redis.from_url(redis_url)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def beat(redis: Redis, feed_ahead_ms: int = 0) -> None:
    """The feed's heartbeat as the feed process writes it (its clock `feed_ahead_ms` ahead)."""
    redis.set(feed.HEARTBEAT_KEY, json.dumps({"ts_ms": quotes.now_ms() + feed_ahead_ms}), px=feed.HEARTBEAT_TTL_MS)


def ticket(client, auth) -> tuple[dict, dict]:
    html = client.get(f"/trade/{SYMBOL}").get_data(as_text=True)
    data = {"symbol": SYMBOL, "direction": "UP", "stake": "10.00", "duration": "60",
            "idempotency_key": KEY_INPUT.search(html).group(1)}
    return data, auth.htmx_headers(f"/trade/{SYMBOL}")


def test_one_placement_is_one_redis_round_trip(desk, monkeypatch):
    app, client, auth, redis = desk
    data, headers = ticket(client, auth)
    beat(redis)
    with app.app_context():
        publish(SYMBOL, "1.10000")
    trips = RoundTrips(monkeypatch)
    before = executed_commands(redis)
    trips.sent.clear()
    response = client.post("/trade/place", data=data, headers=headers)
    sent = len(trips.sent)
    after = executed_commands(redis)

    assert response.status_code == 200, response.get_data(as_text=True)

    with app.app_context():
        trade = db.session.scalar(select(Trade))
        assert trade.entry_price == Decimal("1.10000")  # the entry tick is the quote read in the batch
    assert sent == 1  # was 5: config version, quote, heartbeat, then the fragment's 2 version reads
    executed = {name: after[name] - before.get(name, 0) for name in after if after[name] != before.get(name, 0)}
    assert executed == {"multi": 1, "get": 3, "pttl": 1, "exec": 1}


def test_an_edit_from_another_process_applies_to_the_next_placement(desk):
    """The config version is read in the placement's own batch: no cache outlives a request."""
    app, client, auth, redis = desk
    beat(redis)
    with app.app_context():
        publish(SYMBOL, "1.10000")
    data, headers = ticket(client, auth)
    assert client.post("/trade/place", data=data, headers=headers).status_code == 200

    # Another process (the admin's web process) changes the payout, commits and announces.
    with app.app_context():
        db.session.execute(update(Market).where(Market.symbol == SYMBOL).values(payout_percent=Decimal("55.00")))
        db.session.commit()
    redis.incr(config_signal.REDIS_KEY)
    with app.app_context():
        publish(SYMBOL, "1.10000")
    data, headers = ticket(client, auth)
    assert client.post("/trade/place", data=data, headers=headers).status_code == 200
    with app.app_context():
        payouts = db.session.scalars(select(Trade.payout_percent).order_by(Trade.id)).all()
    assert payouts == [Decimal("80.00"), Decimal("55.00")]

    # ...then pauses the market: the very next placement is refused, nothing debited.
    with app.app_context():
        db.session.execute(update(Market).where(Market.symbol == SYMBOL).values(active=False))
        db.session.commit()
    redis.incr(config_signal.REDIS_KEY)
    with app.app_context():
        publish(SYMBOL, "1.10000")
    response = client.post("/trade/place", data=dict(data, idempotency_key="k" * 22), headers=headers)
    assert response.status_code == 409 and "closed for trading" in response.get_data(as_text=True)


def test_stale_quote_and_skewed_feed_clock_are_refused_through_the_batch(desk):
    app, client, auth, redis = desk
    data, headers = ticket(client, auth)
    beat(redis)
    with app.app_context():
        publish(SYMBOL, "1.10000", ts_ms=quotes.now_ms() - 60_000)
    response = client.post("/trade/place", data=data, headers=headers)
    assert response.status_code == 409 and "stale" in response.get_data(as_text=True)

    beat(redis, feed_ahead_ms=60_000)
    with app.app_context():
        publish(SYMBOL, "1.10000")
    response = client.post("/trade/place", data=data, headers=headers)
    assert response.status_code == 503 and "clock" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(Trade)) is None
