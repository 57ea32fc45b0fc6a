from __future__ import annotations

import enum
import secrets
from datetime import datetime
from decimal import Decimal

from flask_login import UserMixin
from sqlalchemy import CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db, login_manager
from ..types import Money, UTCDateTime, utcnow


class Role(enum.StrEnum):
    USER = "USER"
    ADMIN = "ADMIN"


def new_session_nonce() -> str:
    return secrets.token_hex(8)


class User(UserMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("demo_balance >= 0", name="ck_users_demo_balance_non_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(80))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(10), default=Role.USER.value)
    active: Mapped[bool] = mapped_column(default=True)
    demo_balance: Mapped[Decimal] = mapped_column(Money())
    # Part of the id kept in the session cookie: rotating it ends every session of the user.
    session_nonce: Mapped[str] = mapped_column(String(32), default=new_session_nonce)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN.value

    def get_id(self) -> str:
        return f"{self.id}:{self.session_nonce}"

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email}>"


@login_manager.user_loader
def load_user(session_id: str) -> User | None:
    user_id, _, nonce = session_id.partition(":")
    if not user_id.isdigit():
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not user.active or not secrets.compare_digest(user.session_nonce, nonce):
        return None
    return user
