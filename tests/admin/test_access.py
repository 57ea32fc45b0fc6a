"""The whole admin URL map: 403 for a user, a redirect to login for an anonymous visitor,
and CSRF enforced on every POST (400, nothing changed). The tests walk the URL map, so a
new admin route cannot be left open by mistake."""

import re

import pytest
from sqlalchemy import select

from config import TestingConfig
from edutradex import create_app
from edutradex.extensions import db
from tests.factories import make_admin, make_user
from tests.support.web import csrf_token

# Sample values for URL parameters: real targets, so that a POST that slipped past a
# check would visibly change something.
SAMPLES = {"user_id": "1", "key": "site_name", "job_id": "some-job", "symbol": "OTC_EURUSD",
           "submission_id": "1", "kyc_id": "1", "withdrawal_id": "1"}
# Form data that every admin action would accept if it were not refused first.
FORM = {"role": "ADMIN", "amount": "5.00", "reason": "test reason", "value": "Changed Name",
        "note": "test note", "payout_percent": "90", "active": "y"}


def admin_rules():
    app = create_app(TestingConfig)
    return sorted(
        (rule.rule, sorted(rule.methods - {"HEAD", "OPTIONS"}))
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("admin.")
    )


def concrete(rule: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m: SAMPLES.get(m.group(1), "1"), rule)


ADMIN_RULES = admin_rules()
POST_RULES = [(rule, methods) for rule, methods in ADMIN_RULES if "POST" in methods]


def database_snapshot(app) -> dict:
    with app.app_context():
        return {table.name: sorted(map(tuple, db.session.execute(select(table)).all()), key=repr)
                for table in db.metadata.sorted_tables}


def test_there_are_admin_routes():
    assert ADMIN_RULES and POST_RULES


@pytest.mark.parametrize("rule, methods", ADMIN_RULES)
def test_admin_routes_are_closed_to_anonymous_and_users(app, client, auth, rule, methods):
    with app.app_context():
        make_user("joe@example.com")
    url = concrete(rule)
    before = database_snapshot(app)
    # With a valid CSRF token, so that the access check (not CSRF) is what answers.
    token = csrf_token(client, "/login")
    for method in methods:
        response = client.open(url, method=method, data={"csrf_token": token, **FORM})
        assert response.status_code == 302 and "/login" in response.headers["Location"], (method, url)
    auth.login()
    token = csrf_token(client, "/")
    for method in methods:
        response = client.open(url, method=method, data={"csrf_token": token, **FORM})
        assert response.status_code == 403, (method, url)
    after = database_snapshot(app)
    after["users"] = before["users"]  # logging in updates last_login_at
    assert after == before


@pytest.mark.parametrize("rule, methods", POST_RULES)
def test_admin_posts_without_csrf_token_are_refused_and_change_nothing(app, client, auth, rule, methods):
    with app.app_context():
        make_user("target@example.com")  # id 1, the sample target
        make_admin("boss@example.com")
    auth.login(email="boss@example.com")
    before = database_snapshot(app)
    for headers in ({}, {"HX-Request": "true"}):
        response = client.post(concrete(rule), data=FORM, headers=headers)
        assert response.status_code == 400, rule
        assert "security token" in response.get_data(as_text=True)
    assert database_snapshot(app) == before


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


def test_every_admin_page_renders_for_an_admin(app, client, auth):
    with app.app_context():
        make_user("target@example.com")
        make_admin("boss@example.com")
    auth.login(email="boss@example.com")
    for rule, methods in ADMIN_RULES:
        if "GET" in methods and "<" not in rule:
            response = client.get(rule)
            assert response.status_code == 200, rule
    assert client.get("/admin/users/1").status_code == 200
    assert client.get("/admin/users/999").status_code == 404
