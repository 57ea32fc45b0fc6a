"""Competition fixtures and helpers: funded traders, a competition open for registration,
and the real `flask wallet verify`."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from edutradex.competitions import service
from edutradex.competitions.models import Competition, Participant
from edutradex.extensions import db
from edutradex.types import utcnow
from edutradex.wallet.ledger import get_or_create_wallet, platform_account, post_ledger_entry, wallet_account
from edutradex.wallet.models import EntryType, PlatformAccountKind
from tests.factories import make_user

_numbers = itertools.count(1)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_app(request):
    """The same test on the embedded default (SQLite) and on PostgreSQL."""
    return request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")


@pytest.fixture
def frames(monkeypatch):
    """What the CFD engine sends to the traders' `user:<id>` rooms: (user id, payload)."""
    from edutradex.competitions import engine as engine_module

    sent: list[tuple[int, dict]] = []
    monkeypatch.setattr(engine_module, "emit", lambda user_id, payload: sent.append((user_id, payload)))
    return sent


def fund(user_id: int, amount: str | Decimal) -> None:
    """Credits from outside (an admin adjustment), so the books balance."""
    post_ledger_entry(EntryType.ADJUSTMENT, Decimal(amount), debit=None, credit=wallet_account(user_id),
                      idempotency_key=f"test-fund:{user_id}:{next(_numbers)}", reference=f"user:{user_id}",
                      reason="test funding")
    db.session.commit()


def fund_revenue(amount: str | Decimal) -> None:
    post_ledger_entry(EntryType.ADJUSTMENT, Decimal(amount), debit=None,
                      credit=platform_account(PlatformAccountKind.PLATFORM_REVENUE),
                      idempotency_key=f"test-revenue:{next(_numbers)}", reference="platform", reason="test funding")
    db.session.commit()


def trader(credits: str | Decimal = "100.00") -> int:
    user = make_user()
    if Decimal(credits) > 0:
        fund(user.id, credits)
    return user.id


def terms(**overrides) -> dict:
    now = utcnow().replace(microsecond=0)
    number = next(_numbers)
    base = {
        "name": f"Weekly FX Cup {number}", "entry_fee": "10.00", "min_participants": 1, "max_participants": 10,
        "registration_opens_at": now - timedelta(hours=1), "registration_closes_at": now + timedelta(hours=1),
        "start_at": now + timedelta(hours=1), "end_at": now + timedelta(hours=2),
        "platform_fee_percent": "20", "prize_table": {1: "70", 2: "20", 3: "10"},
    }
    base.update(overrides)
    return base


def open_competition(**overrides) -> Competition:
    """A published competition whose registration is open now."""
    competition = service.create_competition(terms(**overrides))
    return service.publish_competition(competition.id)


def balance(user_id: int) -> Decimal:
    db.session.expire_all()
    return get_or_create_wallet(user_id).balance


def participants(competition_id: int) -> list[Participant]:
    db.session.expire_all()
    return list(db.session.scalars(select(Participant).where(Participant.competition_id == competition_id)
                                   .order_by(Participant.id)))


def assert_books_balance(app) -> str:
    result = app.test_cli_runner().invoke(args=["wallet", "verify"])
    assert result.exit_code == 0, result.output
    return result.output
