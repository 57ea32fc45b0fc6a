import html
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from edutradex.auth.models import User
from edutradex.extensions import db


def user_count(app):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(User))


def test_register_creates_account_with_default_demo_balance_and_signs_in(app, client, auth):
    response = auth.register()
    assert response.status_code == 302
    page = client.get("/").get_data(as_text=True)
    assert "10,000.00" in page and "Welcome back, Trader Joe" in page
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "joe@example.com"))
        assert user.demo_balance == Decimal("10000.00")
        assert user.role == "USER"
        assert user.password_hash.startswith("$argon2id$")
        assert "correct-horse-1" not in user.password_hash


def test_email_is_normalised(app, auth):
    auth.register(email="  Joe@Example.COM ")
    with app.app_context():
        assert db.session.scalar(select(User.email)) == "joe@example.com"


def test_duplicate_email_is_refused(app, client, auth):
    auth.register()
    auth.logout()
    response = auth.register(name="Other", email="JOE@example.com")
    assert response.status_code == 409
    assert "already exists" in response.get_data(as_text=True)
    assert user_count(app) == 1


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"email": "not-an-email"}, "valid email"),
        ({"password": "short"}, "at least 10 characters"),
        ({"confirm": "something-else-1"}, "do not match"),
        ({"name": ""}, "required"),
        ({"name": "x" * 81}, "longer than 80"),
        ({"email": ("a" * 250) + "@example.com"}, "longer than 254"),
        ({"password": "p" * 129}, "longer than 128"),
    ],
)
def test_bad_registration_input_is_refused_with_a_message(app, auth, fields, message):
    response = auth.register(**fields)
    assert response.status_code == 400
    assert message in html.unescape(response.get_data(as_text=True)).lower()
    assert user_count(app) == 0


def test_missing_csrf_token_is_refused(app, client):
    response = client.post("/register", data={"name": "A", "email": "a@example.com",
                                              "password": "correct-horse-1", "confirm": "correct-horse-1"})
    assert response.status_code == 400
    assert "security token" in response.get_data(as_text=True)
    assert user_count(app) == 0


def test_wrong_csrf_token_is_refused(app, client):
    client.get("/register")
    response = client.post("/register", data={"csrf_token": "forged", "name": "A", "email": "a@example.com",
                                              "password": "correct-horse-1", "confirm": "correct-horse-1"})
    assert response.status_code == 400
    assert user_count(app) == 0


def test_registration_is_rate_limited(tmp_path):
    from tests.conftest import build_app
    from tests.support.web import AuthActions

    app = build_app(f"sqlite:///{tmp_path / 'rl.db'}", RATELIMIT_ENABLED=True, RATELIMIT_AUTH="3 per minute")
    client = app.test_client()
    auth = AuthActions(client)
    statuses = [auth.register(email=f"u{i}@example.com", password="short").status_code for i in range(4)]
    assert statuses[:3] == [400, 400, 400]
    assert statuses[3] == 429
    assert "Too many attempts" in auth.register(email="z@example.com").get_data(as_text=True)
