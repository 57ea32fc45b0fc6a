"""The admin's competition section: the form's fields to the terms the competition
service parses, and each refusal placed next to the field it is about. Every change goes
through ``competitions.service`` (which writes the audit entry in its transaction)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from ...competitions.models import DEFAULT_LEVERAGE, Competition, Participant, ParticipantStatus
from ...competitions.terms import TERM_FIELDS
from ...errors import DomainError, InvalidFields
from ...extensions import db

CHECKBOXES = ("prize_requires_trade", "rebuys_allowed")
TIMES = ("registration_opens_at", "registration_closes_at", "start_at", "end_at")

# A refusal's message starts with its field's label (terms.py); cross-field rules name the
# field to correct. First match wins, so longer prefixes come first.
FIELD_OF_MESSAGE = (
    ("Name:", "name"), ("Slug", "slug"), ("The slug", "slug"), ("Description:", "description"), ("Kind:", "kind"),
    ("Entry fee:", "entry_fee"), ("Starting capital:", "starting_capital"),
    ("Minimum participants:", "min_participants"), ("Maximum participants", "max_participants"),
    ("Registration opens:", "registration_opens_at"), ("Registration closes:", "registration_closes_at"),
    ("Registration must close", "registration_closes_at"), ("Registration would already be closed",
                                                             "registration_closes_at"),
    ("Start:", "start_at"), ("End:", "end_at"), ("The end must be after", "end_at"),
    ("Allowed markets:", "allowed_markets"), ("Max leverage for FX_MAJOR", "lev_FX_MAJOR"),
    ("Max leverage for FX_OTHER", "lev_FX_OTHER"), ("Max leverage for SYNTHETIC", "lev_SYNTHETIC"),
    ("Margin-call level:", "margin_call_percent"), ("Stop-out level:", "stop_out_percent"),
    ("The stop-out level", "stop_out_percent"), ("Platform fee:", "platform_fee_percent"),
    ("Prize", "prize_table"), ("Add a prize table", "prize_table"), ("Guaranteed pool:", "guaranteed_pool"),
    ("Rebuy fee:", "rebuy_fee"), ("Rebuys:", "max_rebuys"), ("Repeats:", "repeats"),
    ("Leaderboard freeze:", "freeze_minutes"), ("Max daily loss:", "max_daily_loss_percent"),
    ("Max total loss:", "max_total_loss_percent"), ("Min trading days:", "min_trading_days"),
    ("Max open positions:", "max_open_positions"), ("Max lots per order:", "max_lots_per_order"),
    ("Breach action:", "breach_action"), ("Rule set:", "max_daily_loss_percent"),
)


def field_errors(exc: DomainError) -> DomainError:
    """The same refusal, shown next to its field when the message names one."""
    if exc.field_errors:
        return exc
    for prefix, name in FIELD_OF_MESSAGE:
        if exc.message.startswith(prefix):
            return InvalidFields({name: exc.message}, status_code=exc.status_code)
    return exc


def terms_from_form(form: Mapping[str, str]) -> dict[str, Any]:
    """The posted form as the terms the service parses (it checks every value)."""
    raw: dict[str, Any] = {name: form.get(name, "") for name in TERM_FIELDS
                           if name not in CHECKBOXES and name not in ("max_leverage", "prize_table")}
    for name in CHECKBOXES:
        raw[name] = "on" if form.get(name) else ""
    for name in TIMES:
        raw[name] = (raw[name] or "").replace("T", " ")
    table = [part.strip() for part in (form.get("prize_table") or "").replace(";", ",").split(",")]
    raw["prize_table"] = [part for part in table if part] if any(table) else []
    raw["max_leverage"] = {cls: form.get(f"lev_{cls}", "").strip() or DEFAULT_LEVERAGE[cls] for cls in DEFAULT_LEVERAGE}
    raw["kind"] = raw.get("kind") or "CFD"
    return raw


def form_values(competition: Competition | None) -> dict[str, str]:
    """What the form shows for a competition (or the defaults for a new one)."""
    if competition is None:
        return {"kind": "CFD", "entry_fee": "0.00", "starting_capital": "10000.00", "min_participants": "2",
                "max_participants": "100", "margin_call_percent": "100.00", "stop_out_percent": "50.00",
                "platform_fee_percent": "0.00", "guaranteed_pool": "0.00", "prize_requires_trade": "on",
                "max_rebuys": "0", "rebuy_fee": "0.00", "freeze_minutes": "0", "breach_action": "FLAG",
                **{f"lev_{cls}": str(value) for cls, value in DEFAULT_LEVERAGE.items()}}
    values = {name: "" if getattr(competition, name) is None else str(getattr(competition, name))
              for name in TERM_FIELDS if name not in ("max_leverage", "prize_table", "allowed_markets") + CHECKBOXES}
    for name in TIMES:
        values[name] = getattr(competition, name).strftime("%Y-%m-%dT%H:%M")
    values["allowed_markets"] = ", ".join(competition.allowed_markets or [])
    values["prize_table"] = ", ".join(competition.prize_table or [])
    for name in CHECKBOXES:
        values[name] = "on" if getattr(competition, name) else ""
    for cls, value in (competition.max_leverage or {}).items():
        values[f"lev_{cls}"] = str(value)
    return values


def competitions_page(page: int, per_page: int):
    return db.paginate(select(Competition).order_by(Competition.start_at.desc(), Competition.id.desc()),
                       page=page, per_page=per_page, error_out=False)


def participants_page(competition_id: int, page: int, per_page: int):
    from ...auth.models import User

    query = (select(Participant, User).join(User, User.id == Participant.user_id)
             .where(Participant.competition_id == competition_id, Participant.status == ParticipantStatus.ACTIVE.value)
             .order_by(Participant.final_rank.is_(None), Participant.final_rank, Participant.joined_at, Participant.id))
    total = db.session.scalar(select(db.func.count()).select_from(query.subquery())) or 0
    rows = list(db.session.execute(query.limit(per_page).offset((page - 1) * per_page)))
    return rows, total
