"""Wallet fixtures: localstripe (a fake Stripe server from PyPI) started once per session,
and the app served over real HTTP in a thread so localstripe can deliver signed webhooks
to it. In CI a missing localstripe is a failure, not a skip.

localstripe's fake Stripe.js declares a top-level ``class Element``, which shadows the
DOM's ``window.Element`` for every script on the page and so breaks htmx (``instanceof
Element``). The real Stripe.js leaks nothing but ``Stripe``. So the browser loads
localstripe's own script through a small pass-through proxy that wraps it in a function
scope; every other request goes to localstripe unchanged."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import stripe
from werkzeug.serving import make_server

from edutradex.extensions import db
from tests.conftest import build_app, require
from tests.support.servers import ServerUnavailable, free_port, wait_for_port

WEBHOOK_SECRET = "whsec_edutradex_tests"
SECRET_KEY = "sk_test_edutradex"
PUBLISHABLE_KEY = "pk_test_edutradex"


class LocalStripe:
    def __init__(self):
        binary = Path(sys.executable).with_name("localstripe")
        if not binary.exists():
            raise ServerUnavailable("localstripe is not installed: pip install -r requirements-dev.txt")
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="edutradex-localstripe-"))
        self.log = open(self.workdir / "localstripe.log", "wb")
        self.process = subprocess.Popen([str(binary), "--port", str(self.port), "--from-scratch"], cwd=self.workdir,
                                        stdout=self.log, stderr=subprocess.STDOUT)
        wait_for_port(self.port)
        self.proxy = ScopedStripeJsProxy(self.url)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def js_url(self) -> str:
        """What the page loads as Stripe.js (through the proxy, see the module docstring)."""
        return f"{self.proxy.url}/js.stripe.com/v3/"

    def send_webhooks_to(self, url: str) -> None:
        """localstripe signs every event with this secret and POSTs it to url (about 1 s
        after the event). One registration, overwritten by each test."""
        response = requests.post(f"{self.url}/_config/webhooks/edutradex", data={"url": url, "secret": WEBHOOK_SECRET},
                                 timeout=5)
        response.raise_for_status()

    def card_token(self, number: str = "4242424242424242") -> str:
        """What Stripe.js createToken does in the browser (with the publishable key)."""
        response = requests.post(f"{self.url}/v1/tokens", data={
            "card[number]": number, "card[exp_month]": "12", "card[exp_year]": "2034", "card[cvc]": "123",
            "key": PUBLISHABLE_KEY,
        }, timeout=5)
        response.raise_for_status()
        return response.json()["id"]

    def client(self) -> stripe.StripeClient:
        return stripe.StripeClient(SECRET_KEY, base_addresses={"api": self.url})

    def stop(self) -> None:
        self.proxy.stop()
        self.process.terminate()
        self.process.wait(10)
        self.log.close()


class ScopedStripeJsProxy:
    def __init__(self, upstream: str):

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                if self.command == "GET" and self.path == "/js.stripe.com/v3/":
                    script = requests.get(upstream + self.path, timeout=5).text
                    self._reply(200, {"Content-Type": "application/javascript"},
                                ("(function () {\n" + script + "\n})();\n").encode())
                    return
                length = int(self.headers.get("Content-Length") or 0)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                response = requests.request(self.command, upstream + self.path, headers=headers,
                                            data=self.rfile.read(length) if length else None, timeout=10)
                passed = {k: v for k, v in response.headers.items()
                          if k.lower() in ("content-type", "access-control-allow-origin",
                                           "access-control-allow-headers", "access-control-allow-methods")}
                self._reply(response.status_code, passed, response.content)

            def _reply(self, status: int, headers: dict, body: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_OPTIONS = do_DELETE = _forward  # noqa: N815 - http.server's names

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="session")
def localstripe():
    try:
        server = LocalStripe()
    except ServerUnavailable as exc:
        require(str(exc))
    yield server
    server.stop()


class AppServer:
    """The test's app object served over HTTP from a thread (shares its database)."""

    def __init__(self, app):
        self.port = free_port()
        self.server = make_server("127.0.0.1", self.port, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(5)


def stripe_config(localstripe: LocalStripe) -> dict:
    return {
        "STRIPE_SECRET_KEY": SECRET_KEY,
        "STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": localstripe.url,
        "STRIPE_JS_URL": localstripe.js_url,
    }


def _database_url(request, tmp_path, name: str) -> str:
    if request.param == "postgres":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path / name}"


BOTH_DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]

# The platform's bank account that pays the SEPA payout batches.
DEBTOR = {"PAYOUT_DEBTOR_NAME": "EduTradeX Payouts GmbH", "PAYOUT_DEBTOR_IBAN": "DE02120300000000202051",
          "PAYOUT_DEBTOR_BIC": "BYLADEM1001"}


@pytest.fixture(params=BOTH_DATABASES)
def db_app(request, tmp_path):
    """The demo-provider app on SQLite and on PostgreSQL."""
    app = build_app(_database_url(request, tmp_path, "wallet.db"), MAIL_OUTBOX_DIR=str(tmp_path / "outbox"), **DEBTOR)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(params=BOTH_DATABASES)
def stripe_app(request, tmp_path, localstripe, smtp_server):
    """Stripe mode against localstripe, emails to a real SMTP server, webhooks delivered
    over HTTP to the app; on SQLite and on PostgreSQL."""
    app = build_app(_database_url(request, tmp_path, "stripe.db"), MAIL_OUTBOX_DIR=str(tmp_path / "outbox"),
                    **stripe_config(localstripe), **smtp_server.app_config)
    server = AppServer(app)
    localstripe.send_webhooks_to(f"{server.url}/wallet/webhooks/stripe")
    app.extensions["test_server"] = server
    yield app
    server.stop()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def mail_app(tmp_path, smtp_server):
    """The embedded default's demo provider, with emails going to a real SMTP server."""
    app = build_app(f"sqlite:///{tmp_path / 'mail.db'}", MAIL_OUTBOX_DIR=str(tmp_path / "outbox"), **DEBTOR,
                    **smtp_server.app_config)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
