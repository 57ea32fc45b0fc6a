"""WEB_CONCURRENCY > 1 (wsgi.py's pre-fork): one listener, several web processes serving on
it, Socket.IO kept correct (WebSocket only, rooms over Redis), a clean stop, and a refused
start without Redis."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import socketio as socketio_client

from edutradex.extensions import socketio
from tests.conftest import build_app
from tests.support.live import ROOT, LiveServer
from tests.support.waiting import wait_for


def parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):  # no such process (any more)
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def children_of(pid: int) -> set[int]:
    return {int(entry) for entry in os.listdir("/proc") if entry.isdigit() and parent_of(int(entry)) == pid}


def web_processes(server: LiveServer, reports: dict) -> dict:
    """Record which process answered /healthz (a new connection each time) and its report."""
    checks = server.health()["checks"]
    reports[checks["web_process"]["pid"]] = checks
    return reports


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def cluster(request, tmp_path, redis_url):
    database = {} if request.param == "sqlite" else {"DATABASE_URL": request.getfixturevalue("postgres_url")}
    server = LiveServer(tmp_path / "web", REDIS_URL=redis_url, WEB_CONCURRENCY="2", JOBS_MODE="thread",
                        FEED_TICK_INTERVAL_MS="300", **database).prepare().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.slow
@pytest.mark.redis
def test_two_web_processes_share_one_port_and_socketio_stays_correct(cluster):
    server = cluster
    parent = server.process.pid
    reports: dict = {}
    # two web processes, children of the one started, both answer on the port
    wait_for(lambda: len(web_processes(server, reports)) == 2, interval=0.01, message="both web processes answering")
    assert set(reports) == children_of(parent)

    # the page tells the browser to use the WebSocket only, and the server refuses long-polling
    assert '<meta name="socketio-transports" content="websocket">' in requests.get(server.url + "/login", timeout=5).text
    polling = requests.get(server.url + "/socket.io/", params={"EIO": "4", "transport": "polling"}, timeout=5)
    assert polling.status_code == 400, polling.text
    refused = socketio_client.Client(reconnection=False)
    with pytest.raises(socketio_client.exceptions.ConnectionError):
        refused.connect(server.url, transports=["polling"], wait_timeout=5)

    # WebSocket clients, until both processes hold some: each receives the room's ticks,
    # whichever process it landed on (rooms over the Redis message queue)
    clients, received = [], []

    def connect_one() -> None:
        frames: list = []
        sio = socketio_client.Client(reconnection=False)
        sio.on("tick", lambda frame: frames.append(frame))
        sio.connect(server.url, transports=["websocket"], wait_timeout=10)
        sio.emit("subscribe", {"symbol": "VOLATILITY_100"})
        clients.append(sio)
        received.append(frames)

    def both_hold_clients() -> bool:
        reports.clear()
        wait_for(lambda: len(web_processes(server, reports)) == 2, interval=0.01, message="both processes' reports")
        if all(report["socketio"]["clients"] > 0 for report in reports.values()):
            return True
        connect_one()
        return False

    try:
        for _ in range(4):
            connect_one()
        wait_for(both_hold_clients, timeout=30, message="clients on both web processes")
        assert sum(report["socketio"]["clients"] for report in reports.values()) == len(clients)
        wait_for(lambda: all(len(frames) >= 3 for frames in received), message="ticks for every client")
        assert {frame["symbol"] for frames in received for frame in frames} == {"VOLATILITY_100"}
        # one price authority among the processes: every client sees the same frames
        common = set.intersection(*({frame["ts_ms"] for frame in frames} for frames in received))
        assert common, [[frame["ts_ms"] for frame in frames] for frames in received]
    finally:
        for sio in clients:
            sio.disconnect()

    # a web process that dies is replaced
    victim = min(reports)
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: victim not in children_of(parent) and len(children_of(parent)) == 2, message="a replacement")
    assert "starting another" in server.log_path.read_text()
    clients.clear()
    received.clear()
    connect_one()  # ticks flow again (the price authority, were it the victim, taken over after its lease)
    try:
        wait_for(lambda: len(received[0]) >= 2, message="ticks after the replacement")
    finally:
        clients[0].disconnect()

    # SIGTERM to the parent stops every web process; the feed stops cleanly. Sent to every
    # process at once too, as a host stopping a dyno does: a child then gets it twice.
    children = children_of(parent)
    server.process.terminate()
    for pid in children:
        os.kill(pid, signal.SIGTERM)
    server.stop()
    log = server.log_path.read_text()
    assert server.process.returncode == 0, log
    assert all(parent_of(pid) is None for pid in children), log
    from sqlalchemy import create_engine, text

    engine = create_engine(server.env["DATABASE_URL"])
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT clean FROM feed_authority")).scalar_one(), log
    finally:
        engine.dispose()


@pytest.mark.slow
def test_several_web_processes_without_redis_run_one_and_say_so(tmp_path):
    """A Heroku-style buildpack sets WEB_CONCURRENCY by dyno size; the one-dyno deploy without
    Redis must still start: one web process (the embedded feed and rooms in it), and a
    warning naming what several would need."""
    server = LiveServer(tmp_path / "alone", WEB_CONCURRENCY="2").prepare().start()
    try:
        health = server.health()
        assert health["status"] == "ok", health
        assert health["checks"]["web_process"]["pid"] == server.process.pid  # served by wsgi.py itself: no fork
    finally:
        server.stop()
    assert server.process.returncode == 0
    assert "WEB_CONCURRENCY=2 ignored: several web processes need REDIS_URL" in server.log_path.read_text()


SUPERVISE_CHILDREN_THAT_CANNOT_START = """
import wsgi

def cannot_start():
    raise RuntimeError("cannot start")

print("parent exits with", wsgi.supervise(2, cannot_start), flush=True)
"""


@pytest.mark.slow
def test_web_processes_that_cannot_start_stop_the_parent(tmp_path):
    """Replaced for ever, children failing at start would be a silent restart loop: the
    parent gives up with exit 1. A child never runs the parent's loop (one line printed)."""
    server = LiveServer(tmp_path / "failing")
    result = subprocess.run([sys.executable, "-c", SUPERVISE_CHILDREN_THAT_CANNOT_START], cwd=ROOT, env=server.env,
                            capture_output=True, text=True, timeout=60)
    assert result.stdout.splitlines() == ["parent exits with 1"], result.stderr
    assert result.stderr.count("RuntimeError: cannot start") >= 3
    assert "in a row exited within 5s of their start" in result.stderr


@pytest.mark.parametrize(("env", "transports"), [
    ({}, ["websocket", "polling"]),
    ({"WEB_CONCURRENCY": "2"}, ["websocket"]),
    ({"WEB_REUSE_PORT": "1"}, ["websocket"]),
    ({"WEB_CONCURRENCY": "2", "SOCKETIO_TRANSPORTS": "websocket, polling"}, ["websocket", "polling"]),
])
def test_transports_follow_the_processes_sharing_the_port(env, transports):
    """Long-polling needs sticky sessions: WebSocket only when the port is shared."""
    clean = {key: value for key, value in os.environ.items()
             if key not in {"WEB_CONCURRENCY", "WEB_REUSE_PORT", "SOCKETIO_TRANSPORTS"}}
    result = subprocess.run([sys.executable, "-c", "import config, json; print(json.dumps(config.Config.SOCKETIO_TRANSPORTS))"],
                            cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == json.dumps(transports)


def test_the_server_and_the_page_use_the_configured_transports(tmp_path):
    app = build_app(f"sqlite:///{tmp_path / 'one.db'}", SOCKETIO_TRANSPORTS=["websocket"])
    assert socketio.server.eio.transports == ["websocket"]
    assert '<meta name="socketio-transports" content="websocket">' in app.test_client().get("/login").text
    app = build_app(f"sqlite:///{tmp_path / 'two.db'}", SOCKETIO_TRANSPORTS=["websocket", "polling"])
    assert socketio.server.eio.transports == ["websocket", "polling"]  # not kept from the app before
    assert '<meta name="socketio-transports" content="websocket,polling">' in app.test_client().get("/login").text
    with pytest.raises(RuntimeError, match="SOCKETIO_TRANSPORTS"):
        build_app(f"sqlite:///{tmp_path / 'three.db'}", SOCKETIO_TRANSPORTS=["longpoll"])
