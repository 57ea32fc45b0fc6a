import pytest

from edutradex.auth import service
from edutradex.extensions import db
from tests.factories import PASSWORD, make_user


@pytest.fixture
def user(app):
    with app.app_context():
        return make_user("joe@example.com").id


def test_login_and_logout(client, auth, user):
    response = auth.login()
    assert response.status_code == 302
    assert "Welcome back" in client.get("/").get_data(as_text=True)
    assert auth.logout().status_code == 302
    assert "Start with a free demo account" in client.get("/").get_data(as_text=True)


def test_wrong_password_and_unknown_email_get_the_same_message(client, auth, user):
    wrong = auth.login(password="wrong-password-1")
    unknown = auth.login(email="nobody@example.com")
    assert wrong.status_code == unknown.status_code == 401
    assert "Invalid email or password." in wrong.get_data(as_text=True)
    assert "Invalid email or password." in unknown.get_data(as_text=True)
    assert "Welcome back" not in client.get("/").get_data(as_text=True)


def test_inactive_account_cannot_log_in(app, auth, client, user):
    with app.app_context():
        service.set_active(user, False)
    response = auth.login()
    assert response.status_code == 403
    assert "deactivated" in response.get_data(as_text=True)
    assert client.get("/profile").status_code == 302


def test_deactivation_ends_existing_sessions(app, auth, client, user):
    auth.login()
    assert client.get("/profile").status_code == 200
    with app.app_context():
        service.set_active(user, False)
    assert client.get("/profile").status_code == 302


def test_next_parameter_cannot_redirect_off_site(client, user):
    from tests.support.web import csrf_token

    token = csrf_token(client, "/login")
    response = client.post("/login?next=https://evil.example/", data={"csrf_token": token, "email": "joe@example.com",
                                                                      "password": PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    token = csrf_token(client, "/login")
    response = client.post("/login?next=/profile", data={"csrf_token": token, "email": "joe@example.com",
                                                         "password": PASSWORD})
    assert response.headers["Location"] == "/profile"


def test_logout_needs_csrf(client, auth, user):
    auth.login()
    client.post("/logout")
    assert client.get("/profile").status_code == 200


def test_login_is_rate_limited(tmp_path):
    from tests.conftest import build_app
    from tests.support.web import AuthActions

    app = build_app(f"sqlite:///{tmp_path / 'rl.db'}", RATELIMIT_ENABLED=True, RATELIMIT_AUTH="2 per minute")
    auth = AuthActions(app.test_client())
    assert [auth.login(password="wrong-password").status_code for _ in range(3)] == [401, 401, 429]


def test_password_is_rehashed_when_parameters_change(app, user):
    with app.app_context():
        old_hash = db.session.get(service.User, user).password_hash
        app.config["ARGON2_TIME_COST"] = 2
        service.authenticate("joe@example.com", PASSWORD)
        assert db.session.get(service.User, user).password_hash != old_hash
