"""Users as the admin sees them: search, detail, activation, demo reset, roles, credits."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import Select, func, or_, select

from ...auth import service as auth_service
from ...auth.models import Role, User
from ...core.events import user_room
from ...errors import Conflict, DomainError, found
from ...extensions import db, socketio
from .audit import Actor, audited, record_audit


def feature_installed(name: str) -> bool:
    return name in current_app.blueprints


def user_query(search: str = "") -> Select:
    query = select(User).order_by(User.created_at.desc(), User.id.desc())
    search = search.strip()
    if search:
        if search.isdigit():
            return query.where(User.id == int(search))
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(User.email.ilike(pattern, escape="\\"), User.name.ilike(pattern, escape="\\")))
    return query


def get_user(user_id: int) -> User:
    return found(db.session.get(User, user_id), "No such user.")


@dataclass
class UserOverview:
    """What the detail page shows besides the user row; a section is None when its
    feature is not installed."""

    trades: list[Any] | None = None
    trade_counts: dict[str, int] | None = None
    wallet: Any | None = None
    ledger: list[Any] | None = None
    kyc: Any | None = None


def user_overview(user_id: int) -> UserOverview:
    overview = UserOverview()
    if feature_installed("binary"):
        from ...binary.models import Trade

        overview.trades = list(db.session.scalars(
            select(Trade).where(Trade.user_id == user_id).order_by(Trade.id.desc()).limit(10)))
        overview.trade_counts = dict(db.session.execute(
            select(Trade.status, func.count()).where(Trade.user_id == user_id).group_by(Trade.status)).all())
    if feature_installed("wallet"):
        _wallet_overview(user_id, overview)
    return overview


def _wallet_overview(user_id: int, overview: UserOverview) -> None:
    from ...wallet.models import KycSubmission, LedgerEntry, Wallet

    overview.wallet = db.session.scalar(select(Wallet).where(Wallet.user_id == user_id))
    if overview.wallet is not None:
        overview.ledger = list(db.session.scalars(
            select(LedgerEntry).where(LedgerEntry.wallet_id == overview.wallet.id).order_by(LedgerEntry.id.desc()).limit(10)))
    overview.kyc = db.session.scalar(
        select(KycSubmission).where(KycSubmission.user_id == user_id).order_by(KycSubmission.id.desc()).limit(1))


def end_user_sockets(user_id: int) -> None:
    """Tell the user's open pages to leave, disconnect the sockets this process holds and
    empty the user's room everywhere (close_room goes through the message queue)."""
    room = user_room(user_id)
    socketio.emit("force_logout", {"message": "Your account has been deactivated."}, to=room)
    server = socketio.server
    if server is None:
        return
    for sid, _eio_sid in list(server.manager.get_participants("/", room)):
        server.disconnect(sid, namespace="/")
    socketio.close_room(room)


def set_user_active(actor: Actor, user_id: int, active: bool) -> User:
    user = get_user(user_id)
    if user.id == actor.user_id and not active:
        raise DomainError("You cannot deactivate your own account.")
    if user.active == active:
        raise Conflict(f"{user.email} is already {'active' if active else 'deactivated'}.")
    audited(actor, "user.activate" if active else "user.deactivate", "user", user.id,
            before={"active": user.active}, after={"active": active},
            perform=lambda: auth_service.set_active(user.id, active))
    if not active:
        end_user_sockets(user.id)  # after the commit: the sessions are already invalid
    return user


def reset_user_demo_balance(actor: Actor, user_id: int) -> Decimal:
    user = get_user(user_id)
    before = user.demo_balance
    balance = audited(actor, "user.reset_demo_balance", "user", user.id,
                      before={"demo_balance": before}, after={"demo_balance": auth_service.default_demo_balance()},
                      perform=lambda: auth_service.reset_demo_balance(user.id))
    socketio.emit("balance", {"demo_balance": str(balance)}, to=user_room(user.id))
    return balance


def change_role(actor: Actor, user_id: int, role: str) -> User:
    try:
        new_role = Role(role)
    except ValueError:
        raise DomainError("Choose the role USER or ADMIN.", status_code=422) from None
    # Lock every admin row so two admins demoting each other at once cannot leave none.
    admins = set(db.session.scalars(
        select(User.id).where(User.role == Role.ADMIN.value, User.active.is_(True)).with_for_update()))
    user = get_user(user_id)
    if user.role == new_role.value:
        raise Conflict(f"{user.email} is already {new_role.value}.")
    if new_role is Role.USER:
        if user.id == actor.user_id:
            raise DomainError("You cannot remove your own admin role. Ask another admin.")
        if not admins - {user.id}:
            raise DomainError("This is the last admin; promote someone else first.")
    record_audit(actor, "user.change_role", "user", user.id, before={"role": user.role}, after={"role": new_role.value})
    user.role = new_role.value
    db.session.commit()
    return user


@dataclass(frozen=True)
class Adjustment:
    entry: Any
    repeated: bool  # the form had been submitted before: nothing changed this time


def adjust_user_credits(actor: Actor, user_id: int, amount: Decimal, reason: str, form_key: str) -> Adjustment:
    """A ledger adjustment through the wallet's own service; the reason is mandatory. The
    key the form was rendered with makes it idempotent: a double submit credits once and
    audits once."""
    if not feature_installed("wallet"):
        raise DomainError("The credit wallet is not installed.", status_code=404)
    from ...wallet import service as wallet_service
    from ...wallet.models import Wallet

    user = get_user(user_id)
    before = db.session.scalar(select(Wallet.balance).where(Wallet.user_id == user.id)) or Decimal("0.00")
    try:
        entry = audited(actor, "user.adjust_credits", "user", user.id,
                        before={"credit_balance": before}, after={"credit_balance": before + amount, "amount": amount},
                        note=reason,
                        perform=lambda: wallet_service.adjust_credits(user.id, amount, reason, actor.user_id,
                                                                      idempotency_key=f"adjustment:form:{form_key}"))
    except wallet_service.AdjustmentAlreadyMade as repeat:  # audited() rolled its entry back
        return Adjustment(repeat.entry, repeated=True)
    return Adjustment(entry, repeated=False)
