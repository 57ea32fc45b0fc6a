"""Production shape: one `flask feed run` process is the price authority; two web processes
on the same Redis serve its quotes and relay its ticks, generating none themselves."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests
import socketio as socketio_client

from tests.support.live import ROOT, LiveServer
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def prepare_database(env: dict) -> None:
    subprocess.run([sys.executable, "-m", "flask", "db", "upgrade"], cwd=ROOT, env=env, check=True, timeout=120,
                   capture_output=True)
    subprocess.run([sys.executable, "-m", "flask", "seed"], cwd=ROOT, env=env, check=True, timeout=120,
                   capture_output=True)


def quote(server: LiveServer, symbol: str) -> dict:
    response = requests.get(f"{server.url}/api/markets/{symbol}/quote", timeout=5)
    assert response.status_code == 200, response.text
    return response.json()




@pytest.fixture
def cluster(tmp_path, redis_url):
    env = {"REDIS_URL": redis_url, "EMBEDDED_SERVICES": "0", "DATABASE_URL": f"sqlite:///{tmp_path / 'shared.db'}",
           "FEED_TICK_INTERVAL_MS": "300"}
    web_a = LiveServer(tmp_path / "a", **env)
    web_b = LiveServer(tmp_path / "b", **env)
    prepare_database(web_a.env)
    feed_log = open(tmp_path / "feed.log", "wb")
    feed = subprocess.Popen([sys.executable, "-m", "flask", "feed", "run", "--seconds", "120"], cwd=ROOT,
                            env=web_a.env, stdout=feed_log, stderr=subprocess.STDOUT)
    processes = [feed]
    try:
        web_a.start()
        web_b.start()
        yield web_a, web_b, feed, tmp_path
    finally:
        for server in (web_a, web_b):
            server.stop()
        for process in processes:
            process.terminate()
            process.wait(10)


def test_two_web_processes_serve_the_feed_process_quote(cluster):
    web_a, web_b, feed, tmp_path = cluster
    wait_for(lambda: quote(web_a, "OTC_EUR_USD")["mid"], message="the first quote")
    # prices move every 300 ms: read A, B, A and accept a round where nothing moved between
    for _ in range(30):
        first, other, again = quote(web_a, "OTC_EUR_USD"), quote(web_b, "OTC_EUR_USD"), quote(web_a, "OTC_EUR_USD")
        if first["ts_ms"] == again["ts_ms"]:
            break
    else:
        pytest.fail("quotes never held still for three requests")
    assert (other["bid"], other["ask"], other["mid"], other["ts_ms"]) == (first["bid"], first["ask"], first["mid"],
                                                                          first["ts_ms"])
    assert other["status"] == "live" and other["source"] == "SIM"
    # the web processes do not produce prices: FOREX stays unavailable on both
    assert quote(web_a, "EUR_USD")["available"] is False and quote(web_b, "EUR_USD")["available"] is False
    # both report the feed as healthy from the heartbeat in Redis
    for server in (web_a, web_b):
        health = server.health()
        assert health["checks"]["feed"]["ok"] is True, health
        assert health["checks"]["feed"]["last_tick_age_s"] < 5


def test_ticks_reach_socket_clients_of_either_web_process(cluster):
    web_a, web_b, feed, tmp_path = cluster
    received = {"a": [], "b": []}
    clients = []
    for name, server in (("a", web_a), ("b", web_b)):
        sio = socketio_client.Client(reconnection=False)
        sio.on("tick", lambda frame, name=name: received[name].append(frame))
        sio.connect(server.url, transports=["websocket"])
        sio.emit("subscribe", {"symbol": "VOLATILITY_100"})
        clients.append(sio)
    try:
        wait_for(lambda: len(received["a"]) >= 4 and len(received["b"]) >= 4, message="ticks on both servers")
        common = {f["ts_ms"] for f in received["a"]} & {f["ts_ms"] for f in received["b"]}
        assert len(common) >= 3  # the same frames, from the one authority
        assert {f["symbol"] for f in received["a"] + received["b"]} == {"VOLATILITY_100"}
    finally:
        for sio in clients:
            sio.disconnect()


def test_a_second_feed_process_stands_by(cluster):
    web_a, web_b, feed, tmp_path = cluster
    wait_for(lambda: quote(web_a, "OTC_GOLD")["mid"], message="the first quote")
    second = subprocess.run([sys.executable, "-m", "flask", "feed", "run", "--seconds", "3"], cwd=ROOT, env=web_a.env,
                            capture_output=True, text=True, timeout=60)
    assert "another feed process holds the price authority" in second.stderr
