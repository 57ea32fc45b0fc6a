"""Errors reach Sentry when SENTRY_DSN is set: a real sentry-sdk transport sending to a
tiny HTTP server started here, which keeps the envelopes it receives. Nothing is set up
without SENTRY_DSN."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import build_app
from tests.support.deploy import ROOT, procfile, production_env


class EnvelopeServer:
    """Sentry's ingestion endpoint, as far as a client can tell: POST /api/<project>/envelope/."""

    def __init__(self):
        self.envelopes: list[tuple[str, list[dict]]] = []
        received = self.envelopes

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                received.append((self.path, [json.loads(line) for line in body.splitlines() if line.strip()]))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.dsn = f"http://publickey@127.0.0.1:{self.server.server_address[1]}/42"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, timeout: float = 10.0) -> list[dict]:
        """The error events received (an envelope: its header, then item header / payload pairs)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [lines[index + 1] for path, lines in self.envelopes if path == "/api/42/envelope/"
                     for index in range(1, len(lines) - 1, 2) if lines[index].get("type") == "event"]
            if found:
                return found
            time.sleep(0.05)
        return []

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sentry():
    server = EnvelopeServer()
    yield server
    server.close()


APP = textwrap.dedent("""
    import sys
    from edutradex import create_app
    from edutradex.extensions import csrf

    app = create_app()
    print("sentry_sdk" in sys.modules)

    @app.route("/fail/<int:n>", methods=["POST"])
    @csrf.exempt
    def fail(n):
        raise RuntimeError(f"the view broke on {n}")

    answer = app.test_client().post("/fail/7", data={"password": "hunter2-secret", "iban": "DE89370400440532013000"},
                                    headers={"X-Request-ID": "router-id-0001", "Cookie": "session=s3cr3t-cookie"})
    assert answer.status_code == 500
    """)


def run_app(tmp_path, **env: str) -> str:
    environment = {**os.environ, **production_env(f"sqlite:///{tmp_path / 's.db'}"), **env}
    for name in ("REDIS_URL", "SENTRY_DSN", "PROMETHEUS_MULTIPROC_DIR"):
        if name not in env:
            environment.pop(name, None)
    done = subprocess.run([sys.executable, "-c", APP], cwd=ROOT, env=environment, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow
def test_an_error_in_a_request_reaches_sentry(tmp_path, sentry):
    assert run_app(tmp_path, SENTRY_DSN=sentry.dsn).split() == ["True"]
    [event] = sentry.events()
    [exception] = event["exception"]["values"]
    assert exception["type"] == "RuntimeError" and exception["value"] == "the view broke on 7"
    assert exception["mechanism"]["type"] == "flask" and exception["mechanism"]["handled"] is False
    assert event["environment"] == "production" and event["transaction"] == "fail"
    assert event["tags"]["request_id"] == "router-id-0001"  # as in the request's log lines
    assert event["request"]["url"].endswith("/fail/7") and event["request"]["method"] == "POST"
    sent = json.dumps(sentry.envelopes)
    for secret in ("hunter2-secret", "DE89370400440532013000", "s3cr3t-cookie"):  # no body, no cookie
        assert secret not in sent


@pytest.mark.slow
def test_without_a_dsn_nothing_is_set_up(tmp_path, sentry):
    assert run_app(tmp_path).split() == ["False"]  # not even imported
    assert sentry.events(timeout=1.0) == []


@pytest.mark.redis
@pytest.mark.slow
def test_a_failed_job_in_the_procfile_worker_reaches_sentry(tmp_path, redis_url, sentry):
    from edutradex import jobs
    from edutradex.extensions import db
    from tests import job_targets

    database = f"sqlite:///{tmp_path / 'w.db'}"
    app = build_app(database, REDIS_URL=redis_url, JOBS_MODE="rq", JOBS_IN_PROCESS_WITHOUT_WORKER=False)
    with app.app_context():
        jobs.enqueue(job_targets.rename_user, 424242, "nobody")  # no such user: the job raises
        db.engine.dispose()
    environment = {**os.environ, **production_env(database, REDIS_URL=redis_url, SENTRY_DSN=sentry.dsn)}
    environment["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", os.defpath)])
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    done = subprocess.run(["sh", "-c", f"{procfile()['worker']} --burst"], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    events = sentry.events()
    [exception] = events[0]["exception"]["values"]
    assert exception["type"] == "AttributeError" and exception["mechanism"]["type"] == "rq"
    assert events[0]["extra"]["rq-job"]["func"] == "tests.job_targets.rename_user"
