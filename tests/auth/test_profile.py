from decimal import Decimal

import pytest
from sqlalchemy import update

from edutradex.auth.models import User
from edutradex.extensions import db
from tests.factories import make_user
from tests.support.web import csrf_token


@pytest.fixture
def user(app, auth):
    with app.app_context():
        user_id = make_user("joe@example.com").id
    auth.login()
    return user_id


def test_profile_requires_login(client):
    assert client.get("/profile").headers["Location"].startswith("/login")


def test_profile_shows_and_updates_name(app, client, user):
    assert "joe@example.com" in client.get("/profile").get_data(as_text=True)
    token = csrf_token(client, "/profile")
    response = client.post("/profile", data={"csrf_token": token, "profile-name": "New Name"})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(User, user).name == "New Name"


def test_reset_demo_balance_needs_confirmation(app, client, user):
    with app.app_context():
        db.session.execute(update(User).where(User.id == user).values(demo_balance=Decimal("12.34")))
        db.session.commit()
    token = csrf_token(client, "/profile")
    response = client.post("/account/reset-demo", data={"csrf_token": token})
    assert response.status_code == 400
    assert "Tick the box" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(User, user).demo_balance == Decimal("12.34")

    response = client.post("/account/reset-demo", data={"csrf_token": token, "reset-confirm": "y"})
    assert response.status_code == 303
    with app.app_context():
        assert db.session.get(User, user).demo_balance == Decimal("10000.00")
    assert "10,000.00" in client.get("/profile").get_data(as_text=True)


def test_change_password_signs_out_other_sessions(app, client, user):
    from tests.support.web import AuthActions

    other = app.test_client()
    AuthActions(other).login()
    assert other.get("/profile").status_code == 200
    token = csrf_token(client, "/profile")
    response = client.post("/profile", data={"csrf_token": token, "password-current_password": "correct-horse-1",
                                             "password-new_password": "another-horse-2"})
    assert response.status_code == 302
    assert client.get("/profile").status_code == 200
    assert other.get("/profile").status_code == 302


def test_change_password_with_wrong_current_password(app, client, user):
    token = csrf_token(client, "/profile")
    response = client.post("/profile", data={"csrf_token": token, "password-current_password": "nope-nope-nope",
                                             "password-new_password": "another-horse-2"})
    assert response.status_code == 400
    assert "not correct" in response.get_data(as_text=True)
