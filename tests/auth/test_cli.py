from sqlalchemy import select

from edutradex.auth.models import User
from edutradex.extensions import db
from tests.factories import make_user


def test_create_admin_generates_a_password_once(app, runner):
    result = runner.invoke(args=["create-admin", "boss@example.com"])
    assert result.exit_code == 0
    assert "Password (shown once):" in result.output
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "boss@example.com"))
        assert user.is_admin


def test_create_admin_promotes_an_existing_user(app, runner):
    with app.app_context():
        make_user("joe@example.com")
    result = runner.invoke(args=["create-admin", "joe@example.com"])
    assert "is an admin" in result.output and "Password" not in result.output
    with app.app_context():
        assert db.session.scalar(select(User).where(User.email == "joe@example.com")).is_admin


def test_seed_creates_one_admin_and_is_repeatable(app, runner):
    first = runner.invoke(args=["seed"])
    assert "Password (shown only this once)" in first.output
    second = runner.invoke(args=["seed"])
    assert "Password" not in second.output
    with app.app_context():
        assert db.session.scalar(select(User).where(User.role == "ADMIN")).email == "admin@edutradex.local"
