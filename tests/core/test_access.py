"""Admin pages: 403 for a user, a redirect to login for an anonymous visitor. The test
walks the whole URL map, so a new admin route cannot be left open by mistake."""

import pytest

from config import TestingConfig
from edutradex import create_app
from tests.factories import make_admin, make_user


def admin_rules():
    app = create_app(TestingConfig)
    return sorted(
        (rule.rule, sorted(rule.methods - {"HEAD", "OPTIONS"}))
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("admin.")
    )


def concrete(rule: str) -> str:
    import re

    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", "1", rule)


ADMIN_RULES = admin_rules()


def test_there_are_admin_routes():
    assert ADMIN_RULES


@pytest.mark.parametrize("rule, methods", ADMIN_RULES)
def test_admin_routes_are_closed_to_anonymous_and_users(app, client, auth, rule, methods):
    with app.app_context():
        make_user("joe@example.com")
    url = concrete(rule)
    for method in methods:
        response = client.open(url, method=method)
        assert response.status_code == 302 and "/login" in response.headers["Location"], (method, url)
    auth.login()
    for method in methods:
        response = client.open(url, method=method)
        assert response.status_code in (400, 403), (method, url)  # 400: a POST without CSRF fails first
        if method == "GET":
            assert response.status_code == 403


def test_admin_sees_the_admin_panel(app, client, auth):
    with app.app_context():
        make_admin("boss@example.com")
    auth.login(email="boss@example.com")
    response = client.get("/admin/")
    assert response.status_code == 200
    assert "Admin" in response.get_data(as_text=True)
    assert 'href="/admin/"' in client.get("/").get_data(as_text=True)


def test_users_do_not_see_the_admin_link(app, client, auth):
    with app.app_context():
        make_user("joe@example.com")
    auth.login()
    assert 'href="/admin/"' not in client.get("/").get_data(as_text=True)
