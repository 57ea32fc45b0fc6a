"""Test data made through the services, so it obeys the same rules as real data."""

from __future__ import annotations

import itertools

from edutradex.auth import service as auth_service
from edutradex.auth.models import Role, User

_counter = itertools.count(1)
PASSWORD = "correct-horse-1"


def make_user(email: str | None = None, *, name: str = "Test Trader", password: str = PASSWORD,
              role: Role = Role.USER, active: bool = True) -> User:
    email = email or f"user{next(_counter)}@example.com"
    user = auth_service.register_user(name, email, password, role=role)
    if not active:
        auth_service.set_active(user.id, False)
    return user


def make_admin(email: str | None = None, **kwargs) -> User:
    return make_user(email or f"admin{next(_counter)}@example.com", role=Role.ADMIN, **kwargs)
