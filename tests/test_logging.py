"""Log lines: one JSON object per line in production (LOG_FORMAT=json, its default), with
the request's id and path when written during a request; text in development."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.support.deploy import ROOT, production_env

APP = textwrap.dedent("""
    import logging
    import warnings
    from edutradex import create_app
    from edutradex.extensions import db

    app = create_app()
    with app.app_context():
        db.create_all()

    @app.route("/log-something")
    def log_something():
        logging.getLogger("edutradex.somewhere").info("inside a request: %s", "hello")
        return "ok"

    @app.route("/fail")
    def fail():
        raise RuntimeError("this view is broken")

    logging.getLogger("edutradex.startup").warning("outside any request")
    warnings.warn("a library's notice", UserWarning)
    client = app.test_client()
    answer = client.get("/log-something", headers={"X-Request-ID": "8f6b1c2e-router-id"})
    assert answer.headers["X-Request-ID"] == "8f6b1c2e-router-id"
    assert client.get("/fail").status_code == 500
    fresh = client.get("/log-something", headers={"X-Request-ID": "bad id with spaces"})
    print(fresh.headers["X-Request-ID"])
    """)


def run_app(tmp_path, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, **production_env(f"sqlite:///{tmp_path / 'logs.db'}"), **env}
    for name in ("REDIS_URL", "LOG_FORMAT", "SENTRY_DSN", "PROMETHEUS_MULTIPROC_DIR"):
        if name not in env:
            environment.pop(name, None)
    done = subprocess.run([sys.executable, "-c", APP], cwd=ROOT, env=environment, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done


@pytest.mark.slow
def test_production_logs_one_json_object_per_line_with_the_request(tmp_path):
    done = run_app(tmp_path)
    lines = [json.loads(line) for line in done.stderr.splitlines()]  # every line parses
    assert lines and all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    assert all(line["time"].endswith("Z") for line in lines)

    startup = next(line for line in lines if line["message"] == "outside any request")
    assert startup["level"] == "WARNING" and startup["logger"] == "edutradex.startup"
    assert "request_id" not in startup and "path" not in startup
    assert any("a library's notice" in line["message"] and line["logger"] == "py.warnings" for line in lines)

    inside = [line for line in lines if line["message"] == "inside a request: hello"]
    assert [line["request_id"] for line in inside][0] == "8f6b1c2e-router-id"
    assert inside[0] | {"time": None} == {"time": None, "level": "INFO", "logger": "edutradex.somewhere",
                                          "message": "inside a request: hello", "request_id": "8f6b1c2e-router-id",
                                          "method": "GET", "path": "/log-something"}
    generated = done.stdout.strip()  # a request id that is no id is replaced, and the answer says by what
    assert len(generated) == 32 and inside[1]["request_id"] == generated

    error = next(line for line in lines if line["level"] == "ERROR")
    assert error["path"] == "/fail" and "RuntimeError: this view is broken" in error["exception"]
    assert "Traceback" in error["exception"]


@pytest.mark.slow
def test_development_logs_text_and_log_format_chooses(tmp_path):
    text = run_app(tmp_path, EDUTRADEX_ENV="development", DATABASE_URL=f"sqlite:///{tmp_path / 'dev.db'}")
    assert " WARNING edutradex.startup: outside any request" in text.stderr
    assert not text.stderr.lstrip().startswith("{")
    chosen = run_app(tmp_path, LOG_FORMAT="text")
    assert " INFO edutradex.somewhere: inside a request: hello" in chosen.stderr
    as_json = run_app(tmp_path, EDUTRADEX_ENV="development", DATABASE_URL=f"sqlite:///{tmp_path / 'dev.db'}",
                      LOG_FORMAT="json")
    assert all(json.loads(line) for line in as_json.stderr.splitlines())


@pytest.mark.slow
def test_an_unknown_log_format_is_refused(tmp_path):
    environment = {**os.environ, **production_env(f"sqlite:///{tmp_path / 'x.db'}"), "LOG_FORMAT": "xml"}
    done = subprocess.run([sys.executable, "-c", "from edutradex import create_app; create_app()"], cwd=ROOT,
                          env=environment, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "LOG_FORMAT must be json or text, not 'xml'" in done.stderr
