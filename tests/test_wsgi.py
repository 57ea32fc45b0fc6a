"""wsgi.py as a real process: a second one started by mistake on the same port exits with
an error instead of sharing the port (eventlet's listener would set SO_REUSEPORT); a SIGTERM
stops the embedded feed cleanly."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import requests

from tests.support.live import ROOT, LiveServer

pytestmark = pytest.mark.slow


def second_process(server: LiveServer, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "wsgi.py"], cwd=ROOT, env={**server.env, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_a_second_wsgi_on_the_same_port_fails_loudly(live_server):
    second = second_process(live_server)
    try:
        _, stderr = second.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        second.kill()
        second.communicate()
        pytest.fail("the second wsgi.py kept running on a port that was already in use")
    assert second.returncode != 0
    assert f"127.0.0.1:{live_server.port} is already in use" in stderr
    # the first one still serves every request
    for _ in range(20):
        assert requests.get(live_server.url + "/healthz", timeout=5).status_code == 200
    assert "price feed running" not in stderr  # refused before its services started: it made no price


def test_port_sharing_is_a_deliberate_setting(tmp_path):
    server = LiveServer(tmp_path / "shared", WEB_REUSE_PORT="1", EMBEDDED_SERVICES="0").prepare().start()
    second = second_process(server)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and second.poll() is None:
            time.sleep(0.2)
        assert second.poll() is None, second.communicate()[1]  # both listen on the port
        assert requests.get(server.url + "/healthz", timeout=5).status_code == 200
    finally:
        second.terminate()
        second.communicate(timeout=10)
        server.stop()


def test_a_sigterm_stops_the_embedded_feed_cleanly(live_server):
    """A platform restart sends SIGTERM: the embedded feed writes its last ticks and marks
    the stop clean, so the next start records no gap (a SIGKILL would)."""
    from sqlalchemy import create_engine, text

    time.sleep(2)  # a few batches of ticks
    live_server.stop()  # SIGTERM
    assert live_server.process.returncode == 0, live_server.log_path.read_text()
    engine = create_engine(live_server.env["DATABASE_URL"])
    with engine.connect() as conn:
        assert conn.execute(text("SELECT clean FROM feed_authority")).scalar_one(), live_server.log_path.read_text()
    live_server.start()
    time.sleep(1.5)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM tick_gaps")).scalar_one() == 0
    live_server.kill()
    live_server.start()
    time.sleep(1.5)
    with engine.connect() as conn:  # the same check sees a crash
        assert conn.execute(text("SELECT count(*) FROM tick_gaps")).scalar_one() == 1
    engine.dispose()


def test_an_idle_server_stops_at_once_on_sigterm(tmp_path):
    """No request, no feed: eventlet's hub sleeps in epoll until its next timer (up to a
    minute). The SIGTERM must wake it, not wait for that timer past the platform's grace."""
    server = LiveServer(tmp_path / "idle", EMBEDDED_SERVICES="0").prepare().start()
    time.sleep(1)  # idle: the hub has gone back to sleep after the start-up request
    started = time.monotonic()
    server.stop()
    assert server.process.returncode == 0, server.log_path.read_text()
    assert time.monotonic() - started < 5


SIGNAL_IN_A_GREENLET = """
import os, signal
import eventlet
import wsgi

wsgi.install_signal_handlers()
finished = []

def busy():  # the feed, say, in the middle of a flush when the platform sends SIGTERM
    os.kill(os.getpid(), signal.SIGTERM)
    total = sum(range(100000))  # the handler runs here, in this greenlet
    finished.append(total)

worker = eventlet.spawn(busy)
try:
    eventlet.sleep(5)
    print("not interrupted")
except KeyboardInterrupt:
    worker.wait()
    print("main interrupted; the busy greenlet finished:", bool(finished))
"""


def test_a_sigterm_interrupts_the_serving_greenlet_not_the_one_it_lands_in(tmp_path):
    """Python runs a signal handler in whatever greenlet is running. The SIGTERM must stop
    the server (the main greenlet) and leave the interrupted greenlet to finish its work: a
    price feed killed mid-flush stopped uncleanly (the restart recorded a gap)."""
    server = LiveServer(tmp_path / "signal", EMBEDDED_SERVICES="0").prepare()
    result = subprocess.run([sys.executable, "-c", SIGNAL_IN_A_GREENLET], cwd=ROOT, env=server.env,
                            capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "main interrupted; the busy greenlet finished: True", result.stderr
