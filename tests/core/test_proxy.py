"""TRUSTED_PROXIES: behind a router the client's address comes from X-Forwarded-For, and
without the setting that header is ignored (a client could write any address into it)."""

from __future__ import annotations

import pytest

from edutradex.extensions import db
from tests.conftest import build_app
from tests.factories import make_admin, make_user
from tests.support.web import AuthActions, csrf_token

ROUTER = {"REMOTE_ADDR": "10.0.0.2"}  # what the app sees of every request behind a router


def login_statuses(app, client_address: str, attempts: int) -> list[int]:
    auth = AuthActions(app.test_client())
    auth.client.environ_base.update(ROUTER, HTTP_X_FORWARDED_FOR=client_address)
    return [auth.login(password="wrong-password").status_code for _ in range(attempts)]


def test_login_limit_counts_each_forwarded_client_behind_one_proxy(tmp_path):
    app = build_app(f"sqlite:///{tmp_path / 'p.db'}", RATELIMIT_ENABLED=True, RATELIMIT_AUTH="2 per minute",
                    TRUSTED_PROXIES=1)
    assert login_statuses(app, "203.0.113.7", 3) == [401, 401, 429]
    # another client behind the same router is not locked out with the first
    assert login_statuses(app, "198.51.100.9", 2) == [401, 401]
    # a client that writes its own X-Forwarded-For gets only the address the router added
    assert login_statuses(app, "1.2.3.4, 203.0.113.7", 1) == [429]


def test_without_trusted_proxies_x_forwarded_for_is_ignored(tmp_path):
    app = build_app(f"sqlite:///{tmp_path / 'p.db'}", RATELIMIT_ENABLED=True, RATELIMIT_AUTH="2 per minute")
    assert app.config["TRUSTED_PROXIES"] == 0
    assert login_statuses(app, "203.0.113.7", 2) == [401, 401]
    # a made-up address does not buy more attempts: the limit is on the connection's address
    assert login_statuses(app, "198.51.100.9", 1) == [429]


@pytest.mark.parametrize("proxies, recorded", [(1, "203.0.113.7"), (0, "10.0.0.2")])
def test_audit_log_records_the_client_address(tmp_path, proxies, recorded):
    from edutradex.admin.models import AdminAuditEntry

    app = build_app(f"sqlite:///{tmp_path / 'a.db'}", TRUSTED_PROXIES=proxies)
    with app.app_context():
        target = make_user("target@example.com").id
        make_admin("boss@example.com")
    client = app.test_client()
    client.environ_base.update(ROUTER, HTTP_X_FORWARDED_FOR="203.0.113.7")
    AuthActions(client).login(email="boss@example.com")
    token = csrf_token(client, "/admin/")
    response = client.post(f"/admin/users/{target}/deactivate", data={"csrf_token": token},
                           headers={"HX-Request": "true"})
    assert response.status_code == 204
    with app.app_context():
        [entry] = db.session.scalars(db.select(AdminAuditEntry).where(AdminAuditEntry.action == "user.deactivate"))
        assert entry.ip == recorded


def test_forwarded_scheme_comes_from_the_proxy(tmp_path):
    app = build_app(f"sqlite:///{tmp_path / 's.db'}", TRUSTED_PROXIES=1)

    @app.get("/_scheme")
    def scheme():
        from flask import request

        return request.scheme

    client = app.test_client()
    assert client.get("/_scheme", headers={"X-Forwarded-Proto": "https"}).get_data(as_text=True) == "https"


def test_negative_trusted_proxies_is_refused(tmp_path):
    with pytest.raises(RuntimeError, match="TRUSTED_PROXIES"):
        build_app(f"sqlite:///{tmp_path / 'n.db'}", TRUSTED_PROXIES=-1)
