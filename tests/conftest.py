"""Fixtures: a fresh app and database per test (flaskr style), real PostgreSQL and Redis
servers started for the session, the app as a live process, and a real browser.

Tests that need a server it cannot start are skipped on a developer's machine and FAIL
in CI (CI=true), so a missing server never passes unnoticed."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from config import TestingConfig
from edutradex import create_app
from edutradex.extensions import db
from tests.support.live import LiveServer
from tests.support.servers import PostgresServer, RedisServer, ServerUnavailable
from tests.support.web import AuthActions

IN_CI = os.environ.get("CI", "").lower() == "true"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def require(reason: str):
    if IN_CI:
        pytest.fail(f"required test server missing in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def build_app(database_url: str, **overrides):
    app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=database_url, **overrides)
    with app.app_context():
        db.create_all()
    return app


@pytest.fixture
def app(tmp_path):
    app = build_app(f"sqlite:///{tmp_path / 'test.db'}", MAIL_OUTBOX_DIR=str(tmp_path / "outbox"))
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def auth(client):
    return AuthActions(client)


# ---- real servers ---------------------------------------------------------------

@pytest.fixture(scope="session")
def postgres_server():
    try:
        server = PostgresServer().start()
    except ServerUnavailable as exc:
        require(str(exc))
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server):
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield postgres_server.create_database(name)


@pytest.fixture
def pg_app(postgres_url, tmp_path):
    app = build_app(postgres_url, MAIL_OUTBOX_DIR=str(tmp_path / "outbox"))
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="session")
def redis_server():
    try:
        server = RedisServer().start()
    except ServerUnavailable as exc:
        require(str(exc))
    yield server
    server.stop()


@pytest.fixture
def smtp_server():
    """A real SMTP server (aiosmtpd). Build the app with **smtp_server.app_config; read
    smtp_server.messages (email.message.Message objects)."""
    from tests.support.smtp import SmtpServer

    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def mail_app(tmp_path, smtp_server):
    """An app whose emails go to the real SMTP server, inside a request context (links are
    built with url_for). tests/wallet overrides it with the payout debtor configured."""
    app = build_app(f"sqlite:///{tmp_path / 'mail.db'}", MAIL_OUTBOX_DIR=str(tmp_path / "outbox"),
                    **smtp_server.app_config)
    with app.test_request_context():
        yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def redis_url(redis_server):
    from redis import Redis

    Redis.from_url(redis_server.url).flushall()
    return redis_server.url


@pytest.fixture
def redis_app(tmp_path, redis_url):
    """An app on SQLite with the seeded catalogue and the real Redis (REDIS_URL set)."""
    from edutradex.market.service import seed_markets

    app = build_app(f"sqlite:///{tmp_path / 'redis.db'}", REDIS_URL=redis_url)
    with app.app_context():
        seed_markets()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


# ---- the app as a process, and a browser ----------------------------------------

@pytest.fixture
def live_server(tmp_path):
    server = LiveServer(tmp_path / "live").prepare().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        require(f"{CHROMIUM} not found; apt-get install chromium")
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    )
    yield browser
    browser.close()
    playwright.stop()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


@pytest.fixture(autouse=True)
def _no_heartbeat_left_behind():
    """A feed run by any test (the market's, the CFD engine's) must not make a later test's
    health check see its stale in-process heartbeat."""
    from edutradex.market import feed

    feed._local_heartbeat.clear()
    yield
    feed._local_heartbeat.clear()
