"""Users: search, detail, activation (ends sessions and sockets), demo reset, roles — each
action audited."""

from decimal import Decimal

from sqlalchemy import update

from edutradex.auth.models import User
from edutradex.core.events import user_room
from edutradex.extensions import db, socketio
from tests.factories import make_admin, make_user
from tests.support.web import AuthActions

from .conftest import audit_entries


def user_row(app, user_id):
    with app.app_context():
        user = db.session.get(User, user_id)
        db.session.expunge(user)
        return user


def test_list_is_paginated_and_searchable(app, client, admin, target_id):
    with app.app_context():
        for n in range(30):
            make_user(f"trader{n:02d}@example.com", name=f"Trader {n:02d}")
    page1 = client.get("/admin/users").get_data(as_text=True)
    assert "Page 1 of 2" in page1 and "32 in all" in page1
    assert "trader29@example.com" in page1  # newest first
    page2 = client.get("/admin/users?page=2").get_data(as_text=True)
    assert "target@example.com" in page2 and "trader29@example.com" not in page2

    found = client.get("/admin/users?q=TARGET").get_data(as_text=True)
    assert "target@example.com" in found and "trader01@example.com" not in found
    by_name = client.get("/admin/users?q=Trader 07").get_data(as_text=True)
    assert "trader07@example.com" in by_name and "trader08@example.com" not in by_name
    assert "No user matches" in client.get("/admin/users?q=%25_nobody").get_data(as_text=True)
    assert client.get("/admin/users?page=abc").status_code == 200
    assert client.get("/admin/users?page=²").status_code == 200
    assert client.get("/admin/users?page=99").status_code == 200


def test_detail_page_shows_the_account(app, client, admin, target_id):
    html = client.get(f"/admin/users/{target_id}").get_data(as_text=True)
    assert "target@example.com" in html and "10,000.00" in html
    assert "Deactivate" in html and "Make ADMIN" in html


def test_deactivate_ends_sessions_and_sockets_and_is_audited(app, client, admin, admin_id, target_id):
    target_client = app.test_client()
    AuthActions(target_client).login(email="target@example.com")
    assert target_client.get("/profile").status_code == 200
    sio = socketio.test_client(app, flask_test_client=target_client)
    assert sio.is_connected()
    manager = socketio.server.manager
    assert list(manager.get_participants("/", user_room(target_id)))

    response = admin.post(f"/admin/users/{target_id}/deactivate", htmx=True)
    assert response.status_code == 204 and response.headers["HX-Redirect"] == f"/admin/users/{target_id}"

    assert user_row(app, target_id).active is False
    # The session cookie no longer works ...
    assert target_client.get("/profile").status_code == 302
    # ... the socket is gone (the force_logout message is checked below) ...
    assert not sio.is_connected()
    assert not list(manager.get_participants("/", user_room(target_id)))
    # ... and cannot log in again.
    assert AuthActions(app.test_client()).login(email="target@example.com").status_code == 403

    [entry] = audit_entries(app, "user.deactivate")
    assert (entry.actor_id, entry.target_type, entry.target_id) == (admin_id, "user", str(target_id))
    assert entry.before == {"active": True} and entry.after == {"active": False}
    assert entry.ip == "127.0.0.1" and entry.created_at is not None


def test_force_logout_reaches_the_page_before_the_disconnect(app, client, admin, target_id):
    target_client = app.test_client()
    AuthActions(target_client).login(email="target@example.com")
    sio = socketio.test_client(app, flask_test_client=target_client)
    sio.get_received()
    admin.post(f"/admin/users/{target_id}/deactivate")
    assert not sio.is_connected()
    # get_received() refuses once disconnected; the test client's queue still holds it.
    assert [m["name"] for m in sio.queue] == ["force_logout"]
    assert "deactivated" in sio.queue[0]["args"][0]["message"]


def test_activate_again(app, client, admin, target_id):
    admin.post(f"/admin/users/{target_id}/deactivate")
    response = admin.post(f"/admin/users/{target_id}/activate")
    assert response.status_code == 302
    assert user_row(app, target_id).active is True
    assert [e.action for e in audit_entries(app)] == ["user.deactivate", "user.activate"]
    assert "is active again" in client.get(response.headers["Location"]).get_data(as_text=True)


def test_admin_cannot_deactivate_themselves(app, client, admin, admin_id):
    response = admin.post(f"/admin/users/{admin_id}/deactivate", htmx=True)
    assert response.status_code == 400
    assert "your own account" in response.get_data(as_text=True)
    assert response.headers["HX-Retarget"] == "#toasts"
    assert user_row(app, admin_id).active is True
    assert audit_entries(app) == []


def test_deactivating_an_inactive_user_is_refused(app, client, admin, target_id):
    admin.post(f"/admin/users/{target_id}/deactivate")
    response = admin.post(f"/admin/users/{target_id}/deactivate")
    assert response.status_code == 409
    assert len(audit_entries(app)) == 1


def test_reset_demo_balance(app, client, admin, target_id):
    with app.app_context():
        db.session.execute(update(User).where(User.id == target_id).values(demo_balance=Decimal("12.34")))
        db.session.commit()
    response = admin.post(f"/admin/users/{target_id}/reset-demo")
    assert response.status_code == 302
    assert user_row(app, target_id).demo_balance == Decimal("10000.00")
    [entry] = audit_entries(app, "user.reset_demo_balance")
    assert entry.before == {"demo_balance": "12.34"} and entry.after == {"demo_balance": "10000.00"}


def test_reset_uses_the_default_demo_balance_setting(app, client, admin, target_id):
    admin.post("/admin/settings/default_demo_balance", {"value": "2500"})
    admin.post(f"/admin/users/{target_id}/reset-demo")
    assert user_row(app, target_id).demo_balance == Decimal("2500.00")


def test_change_role_promote_and_demote(app, client, admin, target_id):
    assert admin.post(f"/admin/users/{target_id}/role", {"role": "ADMIN"}).status_code == 302
    assert user_row(app, target_id).role == "ADMIN"
    assert admin.post(f"/admin/users/{target_id}/role", {"role": "USER"}).status_code == 302
    assert user_row(app, target_id).role == "USER"
    entries = audit_entries(app, "user.change_role")
    assert [(e.before, e.after) for e in entries] == [
        ({"role": "USER"}, {"role": "ADMIN"}), ({"role": "ADMIN"}, {"role": "USER"})]


def test_cannot_demote_yourself(app, client, admin, admin_id):
    response = admin.post(f"/admin/users/{admin_id}/role", {"role": "USER"})
    assert response.status_code == 400 and "your own admin role" in response.get_data(as_text=True)
    assert user_row(app, admin_id).role == "ADMIN"


def test_cannot_demote_the_last_admin(app, client, admin, admin_id):
    """Two admins demoting each other: the second request, already past the admin check
    when the first committed, must not leave the platform without an admin."""
    from edutradex.admin.services.audit import Actor
    from edutradex.admin.services.users import change_role
    from edutradex.errors import DomainError

    with app.app_context():
        other = make_admin("other@example.com").id
        change_role(Actor(admin_id), other, "USER")
        try:
            change_role(Actor(other), admin_id, "USER")
        except DomainError as exc:
            assert "last admin" in exc.message
        else:
            raise AssertionError("the last admin was demoted")
        assert db.session.get(User, admin_id).role == "ADMIN"


def test_unknown_role_is_refused(app, client, admin, target_id):
    response = admin.post(f"/admin/users/{target_id}/role", {"role": "ROOT"})
    assert response.status_code == 422
    assert user_row(app, target_id).role == "USER"


def test_unknown_user_is_404(app, client, admin):
    assert admin.post("/admin/users/999/deactivate").status_code == 404
    assert audit_entries(app) == []
