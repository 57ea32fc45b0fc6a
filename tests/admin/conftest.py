"""Fixtures for the admin tests: a signed-in admin and a POST helper with the CSRF token."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from edutradex.admin.models import AdminAuditEntry
from edutradex.extensions import db
from tests.factories import make_admin, make_user
from tests.support.web import csrf_token


@pytest.fixture
def target_id(app):
    """An ordinary user for the admin to act on (created first: id 1)."""
    with app.app_context():
        return make_user("target@example.com", name="Target Trader").id


@pytest.fixture
def admin_id(app, target_id, auth):
    with app.app_context():
        admin_id = make_admin("boss@example.com", name="The Boss").id
    auth.login(email="boss@example.com")
    return admin_id


class AdminActions:
    def __init__(self, client):
        self.client = client

    def post(self, url: str, data: dict | None = None, *, htmx: bool = False, page: str = "/admin/"):
        token = csrf_token(self.client, page)
        headers = {"HX-Request": "true"} if htmx else {}
        return self.client.post(url, data={"csrf_token": token, **(data or {})}, headers=headers)


@pytest.fixture
def admin(client, admin_id):
    return AdminActions(client)


def audit_entries(app, action: str | None = None) -> list[AdminAuditEntry]:
    with app.app_context():
        query = select(AdminAuditEntry).order_by(AdminAuditEntry.id)
        if action:
            query = query.where(AdminAuditEntry.action == action)
        entries = list(db.session.scalars(query))
        db.session.expunge_all()
        return entries


def audit_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(AdminAuditEntry))
