"""The database extension: connections pinged only after sitting idle in the pool."""

from __future__ import annotations

import time

import psycopg2
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from edutradex.extensions import db
from tests.conftest import build_app

pytestmark = pytest.mark.postgres


class CountingCursor(psycopg2.extensions.cursor):
    """Every statement sent to the server, the pool's pings included."""

    sent: list[str] = []

    def execute(self, query, vars=None):
        CountingCursor.sent.append(query if isinstance(query, str) else query.decode())
        return super().execute(query, vars)


@pytest.fixture
def idle_app(postgres_url, tmp_path):
    app = build_app(postgres_url, MAIL_OUTBOX_DIR=str(tmp_path / "outbox"), DATABASE_PING_IDLE_SECONDS=0.3,
                    SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0,
                                               "connect_args": {"cursor_factory": CountingCursor}})
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def backend(app) -> tuple[int, int]:
    """(the server process of the connection a request gets, its pings so far)."""
    with app.app_context():
        pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar()
        pings = db.session.connection().connection.info.get("pings", 0)
        db.session.remove()
    return pid, pings


def terminate(postgres_server, pid: int) -> None:
    conn = psycopg2.connect(host="127.0.0.1", port=postgres_server.port, user="postgres", dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
    conn.close()
    time.sleep(0.05)


def test_a_connection_in_steady_use_is_not_pinged_before_each_request(idle_app):
    first, _ = backend(idle_app)
    CountingCursor.sent.clear()
    for _ in range(5):
        pid, pings = backend(idle_app)
        assert (pid, pings) == (first, 0)
    assert CountingCursor.sent == ["SELECT pg_backend_pid()"] * 5  # no SELECT 1 in front of the requests


def test_a_connection_the_server_dropped_while_idle_is_replaced_before_the_request_uses_it(idle_app, postgres_server):
    dropped, _ = backend(idle_app)
    terminate(postgres_server, dropped)  # a database restart, an idle-connection reaper
    time.sleep(0.4)
    pid, pings = backend(idle_app)  # the request never sees the dead connection
    assert pid != dropped and pings == 0  # pinged, found dead, replaced by a fresh (unpinged) one
    time.sleep(0.4)
    assert backend(idle_app) == (pid, 1)  # idle again: pinged, alive, kept


def test_a_connection_dropped_while_in_steady_use_fails_one_request_and_the_pool_recovers(idle_app, postgres_server):
    dropped, _ = backend(idle_app)
    terminate(postgres_server, dropped)
    with idle_app.app_context():
        with pytest.raises(OperationalError):
            db.session.execute(text("SELECT 1"))
        db.session.remove()
    pid, _ = backend(idle_app)
    assert pid != dropped
