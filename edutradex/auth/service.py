"""Account rules: registration, authentication, roles, activation, demo balance."""

from __future__ import annotations

import secrets
from decimal import Decimal

from flask import current_app
from sqlalchemy import func, select

from ..errors import DomainError, found
from ..extensions import db
from ..settings import get_setting
from ..types import utcnow
from .models import Role, User, new_session_nonce
from .passwords import dummy_verify, hash_password, needs_rehash, verify_password

INVALID_CREDENTIALS = "Invalid email or password."


class AuthError(DomainError):
    pass


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


def default_demo_balance() -> Decimal:
    return Decimal(get_setting("default_demo_balance")).quantize(Decimal("0.01"))


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == normalise_email(email)))


def register_user(name: str, email: str, password: str, *, role: Role = Role.USER) -> User:
    email = normalise_email(email)
    if len(password) < current_app.config["PASSWORD_MIN_LENGTH"]:
        raise AuthError(f"Password must be at least {current_app.config['PASSWORD_MIN_LENGTH']} characters.")
    if find_user_by_email(email) is not None:
        raise AuthError("An account with this email already exists.", status_code=409)
    user = User(
        name=name.strip(),
        email=email,
        password_hash=hash_password(password),
        role=role.value,
        demo_balance=default_demo_balance(),
    )
    db.session.add(user)
    db.session.flush()
    for hook in current_app.extensions.get("on_user_created", []):
        hook(user)
    db.session.commit()
    return user


def authenticate(email: str, password: str) -> User:
    """The same message for an unknown email and a wrong password."""
    user = find_user_by_email(email)
    if user is None:
        dummy_verify(password)
        raise AuthError(INVALID_CREDENTIALS, status_code=401)
    if not verify_password(user.password_hash, password):
        raise AuthError(INVALID_CREDENTIALS, status_code=401)
    if not user.active:
        raise AuthError("This account has been deactivated. Contact an administrator.", status_code=403)
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    db.session.commit()
    return user


def update_profile(user: User, name: str) -> User:
    user.name = name.strip()
    db.session.commit()
    return user


def change_password(user: User, current_password: str, new_password: str) -> None:
    if not verify_password(user.password_hash, current_password):
        raise AuthError("Your current password is not correct.")
    if len(new_password) < current_app.config["PASSWORD_MIN_LENGTH"]:
        raise AuthError(f"Password must be at least {current_app.config['PASSWORD_MIN_LENGTH']} characters.")
    user.password_hash = hash_password(new_password)
    user.session_nonce = new_session_nonce()  # other sessions end
    db.session.commit()


def set_active(user_id: int, active: bool) -> User:
    user = found(db.session.get(User, user_id), "No such user.")
    user.active = active
    if not active:
        user.session_nonce = new_session_nonce()
    db.session.commit()
    return user


def reset_demo_balance(user_id: int) -> Decimal:
    """Back to the default demo balance. Registered hooks (the rise/fall feature) decide
    what happens to open trades before the balance is set.

    Lock order: the user's row first, then (in the hooks) the user's trades — the order
    placement and settlement take too (see binary/settlement.py); a hook must not lock
    another user's row. FOR NO KEY UPDATE, as settlement takes it."""
    user = found(db.session.get(User, user_id, with_for_update={"key_share": True}), "No such user.")
    for hook in current_app.extensions.get("on_demo_reset", []):
        hook(user)
    user.demo_balance = default_demo_balance()
    db.session.commit()
    return user.demo_balance


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def create_admin(email: str, name: str = "Administrator", password: str | None = None) -> tuple[User, str | None]:
    """Promote an existing account or create a new admin. Returns the user and the
    generated password (None when the account existed or a password was given)."""
    user = find_user_by_email(email)
    if user is not None:
        user.role = Role.ADMIN.value
        db.session.commit()
        return user, None
    generated = None
    if password is None:
        password = generated = generate_password()
    user = register_user(name, email, password, role=Role.ADMIN)
    return user, generated


def admin_exists() -> bool:
    return bool(db.session.scalar(select(func.count()).select_from(User).where(User.role == Role.ADMIN.value)))
