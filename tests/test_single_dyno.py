"""One `web` dyno is the whole platform, the deploy the product owner names: with
PostgreSQL alone, and with PostgreSQL + Redis (added for shared rate limits, say) and no
`feed` or `worker` process. Prices tick and a trade settles in both, as real processes:
the Procfile's release, then wsgi.py."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import requests
from redis import Redis
from sqlalchemy import create_engine, text

from edutradex.market.authority import LOCK_KEY
from tests.binary.test_crash import SYMBOL, place, register
from tests.support.deploy import production_env, run_release
from tests.support.live import ROOT, LiveServer
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def quote(server: LiveServer) -> dict:
    response = requests.get(f"{server.url}/api/markets/{SYMBOL}/quote", timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def one_web_dyno(tmp_path, postgres_url: str, **env: str) -> LiveServer:
    # Development settings named on purpose: the test talks plain HTTP, and production's
    # Secure cookies would not come back over it. Services and processes are the deploy's.
    deploy = {**production_env(postgres_url), "EDUTRADEX_ENV": "development", **env}
    run_release({**{k: v for k, v in os.environ.items() if k != "REDIS_URL"}, **deploy})
    return LiveServer(tmp_path / "web", **deploy)


def prices_tick_and_a_trade_settles(server: LiveServer, postgres_url: str) -> None:
    first = wait_for(lambda: (q := quote(server))["status"] == "live" and q, message="a live quote")
    wait_for(lambda: quote(server)["tick_id"] != first["tick_id"], message="the next tick")

    session = register(server.url)
    place(session, server.url, "UP", "10.00", 5)
    engine = create_engine(postgres_url)
    try:
        def settled():
            with engine.connect() as conn:
                return conn.execute(text("SELECT status, result, payout FROM trades")).all()

        [trade] = wait_for(lambda: (rows := settled()) and rows[0][0] == "SETTLED" and rows, timeout=30,
                           message="the trade settled")
        assert trade.result in {"WIN", "LOSS", "TIE"}
        with engine.connect() as conn:
            balance = conn.execute(text("SELECT demo_balance FROM users")).scalar()
        assert balance == 10000 - 10 + trade.payout
    finally:
        engine.dispose()


def test_one_web_dyno_with_postgres(tmp_path, postgres_url):
    server = one_web_dyno(tmp_path, postgres_url).start()
    try:
        prices_tick_and_a_trade_settles(server, postgres_url)
        checks = server.health()["checks"]
        assert checks["feed"]["ok"] and checks["jobs"]["mode"] == "thread"
    finally:
        server.stop()


@pytest.mark.redis
def test_one_web_dyno_with_postgres_and_redis(tmp_path, postgres_url, redis_url):
    server = one_web_dyno(tmp_path, postgres_url, REDIS_URL=redis_url).start()
    try:
        prices_tick_and_a_trade_settles(server, postgres_url)
        health = server.health()
        assert health["status"] == "ok", health
        assert health["checks"]["feed"]["ok"] is True
        assert health["checks"]["jobs"] == {**health["checks"]["jobs"], "mode": "rq", "workers": 0, "in_process": True,
                                            "queued": 0}
    finally:
        server.stop()
    log = server.log_path.read_text()
    assert "this web process starts run_feed_service, settlement_clock" in log
    assert "no RQ worker is registered" in log


@pytest.mark.redis
def test_web_stands_by_while_a_feed_process_holds_the_authority_and_takes_over_when_it_is_gone(
        tmp_path, postgres_url, redis_url):
    server = one_web_dyno(tmp_path, postgres_url, REDIS_URL=redis_url, FEED_TICK_INTERVAL_MS="200")
    feed_log = open(tmp_path / "feed.log", "wb")
    feed = subprocess.Popen([sys.executable, "-m", "flask", "feed", "run", "--seconds", "120"], cwd=ROOT,
                            env=server.env, stdout=feed_log, stderr=subprocess.STDOUT)
    try:
        # the feed process first holds the authority (it imports slowly on a loaded machine;
        # a web process started before that would rightly stand in for it)
        lock = Redis.from_url(redis_url)
        wait_for(lambda: lock.exists(LOCK_KEY), timeout=60, message="the feed process taking the price authority")
        server.start()
        wait_for(lambda: quote(server)["status"] == "live", message="the feed process's quotes")
        time.sleep(3)  # several of the web process's looks at the lock
        assert "this web process starts" not in server.log_path.read_text()

        feed.terminate()  # the `feed` dyno goes away (its lock expires)
        feed.wait(10)
        gone_at = quote(server)["tick_id"]
        wait_for(lambda: "this web process starts run_feed_service" in server.log_path.read_text(), timeout=20,
                 message="the web process taking the price authority")
        wait_for(lambda: quote(server)["tick_id"] != gone_at and quote(server)["status"] == "live", timeout=20,
                 message="prices from the web process")
    finally:
        if feed.poll() is None:
            feed.kill()
            feed.wait(10)
        server.stop()
