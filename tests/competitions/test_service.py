"""Terms, entry, leaving, cancelling, rebuys and disqualification: every bad input is a
clear error that changes nothing, and every fee moves exactly once."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from edutradex.admin.models import AdminAuditEntry
from edutradex.admin.services.audit import Actor
from edutradex.competitions import lifecycle, service
from edutradex.competitions.models import Competition, CompetitionStatus
from edutradex.errors import Conflict, DomainError, Forbidden, NotFound
from edutradex.extensions import db
from edutradex.market.models import Market
from edutradex.types import utcnow
from edutradex.wallet.ledger import InsufficientFunds
from edutradex.wallet.models import LedgerEntry
from tests.competitions.conftest import (
    assert_books_balance,
    balance,
    open_competition,
    participants,
    terms,
    trader,
)
from tests.factories import make_admin

D = Decimal


def snapshot() -> tuple:
    db.session.expire_all()
    competitions = [(c.id, c.status, c.entry_fee, c.seats_taken, c.name, c.description)
                    for c in db.session.scalars(select(Competition).order_by(Competition.id))]
    return competitions, db.session.scalar(select(func.count(LedgerEntry.id)))


BAD_TERMS = [
    ({"entry_fee": "-1"}, "Entry fee: must be at least 0."),
    ({"entry_fee": "NaN"}, "Entry fee: enter a number, e.g. 25.50."),
    ({"entry_fee": "1e30"}, "Entry fee: enter a number, e.g. 25.50."),
    ({"entry_fee": "99999999999"}, "Entry fee: must be at most 1000000."),
    ({"entry_fee": "10.005"}, "Entry fee: use at most 2 decimal places"),
    ({"entry_fee": "ten"}, "Entry fee: enter a number, e.g. 25.50."),
    ({"entry_fee": 1.5}, "Entry fee: enter an exact decimal amount, e.g. 25.50."),
    ({"starting_capital": "-10000"}, "Starting capital: must be more than 0."),
    ({"starting_capital": "0"}, "Starting capital: must be more than 0."),
    ({"starting_capital": "inf"}, "Starting capital: enter a number, e.g. 25.50."),
    ({"starting_capital": "1000000000000"}, "Starting capital: must be at most 100000000."),
    ({"starting_capital": "10000.001"}, "Starting capital: use at most 2 decimal places"),
    ({"end_at": utcnow() + timedelta(minutes=30)}, "The end must be after the start"),
    ({"registration_closes_at": utcnow() + timedelta(hours=3)}, "Registration must close at or before the start"),
    ({"prize_table": {1: "80", 2: "30"}}, "add up to 110.00 %, more than 100 %"),
    ({"prize_table": {1: "101"}}, "Prize for rank 1: must be at most 100."),
    ({"prize_table": {1: "70", 2: "-5"}}, "Prize for rank 2: must be more than 0."),
    ({"prize_table": {1: "70", 3: "10"}}, "without gaps (rank 2 is missing)"),
    ({"prize_table": {1: "70", 2: "10.555"}}, "Prize for rank 2: use at most 2 decimal places"),
    ({"allowed_markets": ["OTC_EUR_USD", "NOPE_XYZ"]}, "unknown market 'NOPE_XYZ'"),
    ({"max_leverage": {"FX_MAJOR": 0}}, "Max leverage for FX_MAJOR: between 1 and 1,000"),
    ({"max_leverage": {"CRYPTO": 2}}, "unknown market class 'CRYPTO'"),
    ({"platform_fee_percent": "120"}, "Platform fee: must be at most 100."),
    ({"stop_out_percent": "150"}, "stop-out level must be below the margin-call level"),
    ({"min_participants": 5, "max_participants": 3}, "Maximum participants must be at least the minimum"),
    ({"max_participants": "lots"}, "Maximum participants: enter a whole number"),
    ({"name": "x"}, "Name: at least 3 characters"),
    ({"kind": "POKER"}, "Kind: CFD or RISE_FALL"),
    ({"rebuys_allowed": True, "max_rebuys": 0}, "Rebuys: allow at least one"),
    ({"rebuy_fee": "-1", "rebuys_allowed": True, "max_rebuys": 1}, "Rebuy fee: must be at least 0."),
    ({"start_at": "tomorrow"}, "Start: enter a date and time"),
    ({"colour": "red"}, "Unknown term 'colour'"),
    ({"freeze_minutes": "-1"}, "Leaderboard freeze: between 0 and 10,080"),
    ({"freeze_minutes": "60"}, "Leaderboard freeze: it must be shorter than the competition"),
]


@pytest.mark.parametrize(("bad", "message"), BAD_TERMS, ids=[m for _, m in BAD_TERMS])
def test_bad_terms_are_refused_clearly_and_change_nothing(app, bad, message):
    with app.app_context():
        db.session.add(Market(symbol="OTC_EUR_USD", name="EUR/USD OTC", market_type="OTC"))
        db.session.commit()
        draft = service.create_competition(terms())
        before = snapshot()
        with pytest.raises(DomainError) as create_error:
            service.create_competition(terms(**bad))
        assert message in create_error.value.message
        with pytest.raises(DomainError) as update_error:
            service.update_competition(draft.id, bad)
        assert message in update_error.value.message
        assert snapshot() == before


def test_known_markets_and_market_types_are_accepted(app):
    with app.app_context():
        db.session.add(Market(symbol="OTC_EUR_USD", name="EUR/USD OTC", market_type="OTC"))
        db.session.commit()
        competition = service.create_competition(terms(allowed_markets="otc_eur_usd, SYNTHETIC",
                                                       max_leverage={"fx_major": "50"}))
        assert competition.allowed_markets == ["OTC_EUR_USD", "SYNTHETIC"]
        assert competition.max_leverage == {"FX_MAJOR": 50, "FX_OTHER": 20, "SYNTHETIC": 10}
        assert (competition.kind, competition.starting_capital, competition.stop_out_percent,
                competition.margin_call_percent) == ("CFD", D("10000.00"), D("50.00"), D("100.00"))


def test_esma_leverage_classes():
    from edutradex.competitions.terms import leverage_class

    assert leverage_class("OTC_EUR_USD", "OTC") == "FX_MAJOR"
    assert leverage_class("USD_JPY", "FOREX") == "FX_MAJOR"
    assert leverage_class("OTC_AUD_USD", "OTC") == "FX_OTHER"
    assert leverage_class("XAU_USD", "FOREX") == "FX_OTHER"
    assert leverage_class("VOL_100", "SYNTHETIC") == "SYNTHETIC"


def test_slugs_are_unique(app):
    with app.app_context():
        service.create_competition(terms(slug="weekly-cup"))
        before = snapshot()
        with pytest.raises(Conflict, match="already used"):
            service.create_competition(terms(slug="weekly-cup"))
        with pytest.raises(DomainError, match="Slug"):
            service.create_competition(terms(slug="Weekly Cup!"))
        assert snapshot() == before


def test_terms_lock_when_the_first_entrant_joins_except_the_description(app):
    with app.app_context():
        competition = open_competition()
        service.update_competition(competition.id, {"entry_fee": "12.00"})  # nobody in yet
        assert competition.entry_fee == D("12.00")
        user = trader()
        service.join_competition(competition.id, user)
        service.leave_competition(competition.id, user)  # even after everyone left
        before = snapshot()
        with pytest.raises(Conflict, match="terms are locked"):
            service.update_competition(competition.id, {"entry_fee": "1.00"})
        with pytest.raises(Conflict, match="terms are locked"):
            service.update_competition(competition.id, {"freeze_minutes": "5"})
        assert snapshot() == before
        service.update_competition(competition.id, {"description": "Trade FX majors only."})
        assert db.session.get(Competition, competition.id).description == "Trade FX majors only."


def test_publish_only_a_draft_with_open_dates(app):
    with app.app_context():
        stale = service.create_competition(terms(registration_opens_at=utcnow() - timedelta(hours=3),
                                                 registration_closes_at=utcnow() - timedelta(hours=2),
                                                 start_at=utcnow() - timedelta(hours=2)))
        with pytest.raises(DomainError, match="already be closed"):
            service.publish_competition(stale.id)
        competition = open_competition()
        with pytest.raises(Conflict, match="Only a draft"):
            service.publish_competition(competition.id)
        assert competition.status == CompetitionStatus.SCHEDULED


# ---- entry ------------------------------------------------------------------------------

def test_join_debits_the_fee_into_the_pool_and_opens_the_account(db_app):
    with db_app.app_context():
        competition = open_competition(entry_fee="10.00", starting_capital="25000")
        user = trader("15.00")
        result = service.join_competition(competition.id, user)
        assert (result.seats_taken, result.fee) == (1, D("10.00"))
        [participant] = participants(competition.id)
        assert (participant.user_id, participant.cash, participant.equity, participant.trades_count) == (
            user, D("25000.00"), D("25000.00"), 0)
        assert balance(user) == D("5.00") and service.pool_balance(competition.id) == D("10.00")
        entry = db.session.scalar(select(LedgerEntry).where(LedgerEntry.wallet_id.is_not(None),
                                                            LedgerEntry.entry_type == "competition_entry"))
        assert entry.idempotency_key == f"competition-entry:{competition.id}:{user}"
        assert_books_balance(db_app)


def test_free_competitions_move_no_credits(app):
    with app.app_context():
        competition = open_competition(entry_fee="0", prize_table={})
        user = trader("0")
        service.join_competition(competition.id, user)
        assert len(participants(competition.id)) == 1 and balance(user) == D("0.00")


def test_joining_refusals_change_nothing(db_app):
    with db_app.app_context():
        user = trader("100.00")
        full = open_competition(max_participants=1)
        service.join_competition(full.id, trader())
        future = open_competition(registration_opens_at=utcnow() + timedelta(minutes=10),
                                  registration_closes_at=utcnow() + timedelta(minutes=50))
        draft = service.create_competition(terms())
        cancelled = open_competition()
        service.cancel_competition(cancelled.id, "Sponsor withdrew")
        live = open_competition(min_participants=1)
        service.join_competition(live.id, trader())
        lifecycle.start_competition(live.id, live.start_at)
        joined = open_competition()
        service.join_competition(joined.id, user)
        expensive = open_competition(entry_fee="500.00")
        late = trader()
        before, wallet = snapshot(), balance(user)
        cases = [
            (full.id, Conflict, "This competition is full."),
            (future.id, Conflict, "Registration has not opened yet."),
            (draft.id, NotFound, "This competition does not exist."),
            (cancelled.id, Conflict, "This competition was cancelled."),
            (live.id, Conflict, "This competition has already started: registration is closed."),
            (joined.id, Conflict, "You are already in this competition."),
            (expensive.id, InsufficientFunds, "Not enough credits: the entry fee is 500.00 credits."),
            (987654, NotFound, "This competition does not exist."),
        ]
        for competition_id, error, message in cases:
            with pytest.raises(error) as raised:
                service.join_competition(competition_id, user)
            assert raised.value.message == message
        with pytest.raises(Conflict, match="Registration is closed"):
            service.join_competition(joined.id, late, now=joined.registration_closes_at)
        assert snapshot() == before and balance(user) == wallet
        assert_books_balance(db_app)


def test_leaving_before_the_start_refunds_once_and_joining_again_pays_again(db_app):
    with db_app.app_context():
        competition = open_competition(entry_fee="10.00")
        user = trader("100.00")
        service.join_competition(competition.id, user)
        assert service.leave_competition(competition.id, user) == D("10.00")
        assert balance(user) == D("100.00") and service.pool_balance(competition.id) == D("0.00")
        with pytest.raises(Conflict, match="not in this competition"):
            service.leave_competition(competition.id, user)
        assert balance(user) == D("100.00")
        assert db.session.get(Competition, competition.id).seats_taken == 0
        service.join_competition(competition.id, user)  # a new entry: a new key, charged again
        assert balance(user) == D("90.00") and db.session.get(Competition, competition.id).seats_taken == 1
        keys = sorted(db.session.scalars(select(LedgerEntry.idempotency_key).where(LedgerEntry.wallet_id.is_not(None),
                                                                                   LedgerEntry.entry_type != "adjustment")))
        c = competition.id
        assert keys == [f"competition-entry:{c}:{user}", f"competition-entry:{c}:{user}:2", f"competition-refund:{c}:{user}"]
        assert_books_balance(db_app)


def test_leaving_after_the_start_is_refused(app):
    with app.app_context():
        competition = open_competition(entry_fee="10.00", min_participants=1)
        user = trader()
        service.join_competition(competition.id, user)
        lifecycle.start_competition(competition.id, competition.start_at)
        with pytest.raises(Conflict, match="can no longer leave"):
            service.leave_competition(competition.id, user)
        assert balance(user) == D("90.00") and service.pool_balance(competition.id) == D("10.00")


def test_cancel_refunds_everyone_once_and_a_disqualified_fee_goes_to_the_platform(db_app):
    with db_app.app_context():
        admin = make_admin()
        competition = open_competition(entry_fee="10.00")
        users = [trader() for _ in range(3)]
        for user in users:
            service.join_competition(competition.id, user)
        service.disqualify(competition.id, users[2], "Collusion", actor=Actor(admin.id))
        assert service.cancel_competition(competition.id, "Sponsor withdrew", actor=Actor(admin.id)) == 2
        assert [balance(u) for u in users] == [D("100.00"), D("100.00"), D("90.00")]
        with pytest.raises(Conflict, match="already cancelled"):
            service.cancel_competition(competition.id, "Again")
        with pytest.raises(Conflict):
            service.leave_competition(competition.id, users[0])
        assert [balance(u) for u in users] == [D("100.00"), D("100.00"), D("90.00")]
        assert service.pool_balance(competition.id) == D("0.00")
        actions = set(db.session.scalars(select(AdminAuditEntry.action)))
        assert {"competition.cancel", "competition.disqualify"} <= actions
        with pytest.raises(DomainError, match="Give a reason"):
            service.cancel_competition(open_competition().id, " ")
        assert_books_balance(db_app)


def test_rebuys_only_while_live_below_the_start_and_into_the_pool(db_app):
    with db_app.app_context():
        competition = open_competition(entry_fee="10.00", rebuys_allowed=True, max_rebuys=1, rebuy_fee="5.00",
                                       min_participants=1)
        user = trader("100.00")
        service.join_competition(competition.id, user)
        with pytest.raises(Conflict, match="only while the competition is live"):
            service.rebuy(competition.id, user)
        lifecycle.start_competition(competition.id, competition.start_at)
        with pytest.raises(Conflict, match="equity is below the starting capital"):
            service.rebuy(competition.id, user, now=competition.start_at)
        [participant] = participants(competition.id)
        participant.equity, participant.cash = D("4000.00"), D("4000.00")
        db.session.commit()
        assert service.rebuy(competition.id, user, now=competition.start_at) == 1
        [participant] = participants(competition.id)
        assert (participant.equity, participant.cash, participant.rebuys, participant.fees_paid) == (
            D("10000.00"), D("10000.00"), 1, D("15.00"))
        assert balance(user) == D("85.00") and service.pool_balance(competition.id) == D("15.00")
        participant.equity = D("10.00")
        db.session.commit()
        with pytest.raises(Conflict, match="used all 1 rebuys"):
            service.rebuy(competition.id, user, now=competition.start_at)
        with pytest.raises(Forbidden, match="not in this competition"):
            service.rebuy(competition.id, trader(), now=competition.start_at)
        key = db.session.scalar(select(LedgerEntry.idempotency_key).where(LedgerEntry.wallet_id.is_not(None),
                                                                          LedgerEntry.amount == D("-5.00")))
        assert key == f"competition-rebuy:{competition.id}:{user}:1"
        # a cancellation while live refunds the entry and the rebuy
        assert service.cancel_competition(competition.id, "Feed outage") == 1
        assert balance(user) == D("100.00")
        assert_books_balance(db_app)


def test_rebuys_not_allowed(app):
    with app.app_context():
        competition = open_competition(min_participants=1)
        user = trader()
        service.join_competition(competition.id, user)
        lifecycle.start_competition(competition.id, competition.start_at)
        with pytest.raises(Conflict, match="does not allow rebuys"):
            service.rebuy(competition.id, user, now=competition.start_at)


def test_disqualify_needs_a_reason_and_a_participant(app):
    with app.app_context():
        competition = open_competition()
        user = trader()
        service.join_competition(competition.id, user)
        with pytest.raises(DomainError, match="Give a reason"):
            service.disqualify(competition.id, user, "")
        with pytest.raises(NotFound, match="not in this competition"):
            service.disqualify(competition.id, trader(), "Cheating")
        participant = service.disqualify(competition.id, user, "Cheating")
        assert participant.disqualified and participant.disqualify_reason == "Cheating"
        with pytest.raises(Conflict, match="already disqualified"):
            service.disqualify(competition.id, user, "Cheating")
        with pytest.raises(Forbidden, match="fee is not refunded"):
            service.leave_competition(competition.id, user)
        assert balance(user) == D("90.00")


def test_admin_actions_are_audited_with_the_action(app):
    with app.app_context():
        admin = Actor(make_admin().id, "203.0.113.9")
        competition = service.create_competition(terms(), created_by=admin.user_id, actor=admin)
        service.update_competition(competition.id, {"entry_fee": "15.00"}, actor=admin)
        service.publish_competition(competition.id, actor=admin)
        service.update_competition(competition.id, {"description": "Majors only."}, actor=admin)
        entries = db.session.scalars(select(AdminAuditEntry).order_by(AdminAuditEntry.id)).all()
        assert [e.action for e in entries] == ["competition.create", "competition.update", "competition.publish",
                                               "competition.update_description"]
        assert entries[1].before == {"entry_fee": "10.00"} and entries[1].after == {"entry_fee": "15.00"}
        assert {e.target_id for e in entries} == {str(competition.id)} and entries[0].ip == "203.0.113.9"


def test_a_finished_competition_keeps_its_description(app):
    with app.app_context():
        competition = open_competition()
        service.cancel_competition(competition.id, "No sponsor")
        with pytest.raises(Conflict, match="can no longer change"):
            service.update_competition(competition.id, {"description": "Rewritten history"})
        with pytest.raises(Conflict, match="terms are locked"):
            service.update_competition(competition.id, {"name": "Renamed after the fact"})


# ---- clone --------------------------------------------------------------------------------

def test_clone_copies_every_term_into_a_future_draft_never_the_participants_money_or_status(app):
    from edutradex.competitions.terms import TERM_FIELDS

    with app.app_context():
        source = open_competition(description="Rules.", allowed_markets=["SYNTHETIC"], rebuys_allowed=True,
                                  max_rebuys=2, rebuy_fee="5.00", guaranteed_pool="50.00",
                                  max_leverage={"FX_MAJOR": 25})
        user = trader("50.00")
        service.join_competition(source.id, user)
        lifecycle.start_competition(source.id, now=source.start_at)
        db.session.expire_all()
        source = db.session.get(Competition, source.id)
        assert source.status == "LIVE"
        later = source.end_at + timedelta(days=3, hours=5)  # the source is over by then
        clone = service.clone_competition(source.id, now=later)
        db.session.expire_all()
        clone, source = db.session.get(Competition, clone.id), db.session.get(Competition, source.id)
        times = ("registration_opens_at", "registration_closes_at", "start_at", "end_at")
        for name in TERM_FIELDS:
            if name not in ("name", "slug") + times:
                assert getattr(clone, name) == getattr(source, name), name
        assert clone.name == f"{source.name} (copy)" and clone.slug == f"{source.slug}-copy"
        assert (clone.status, clone.seats_taken, clone.has_had_entrants, clone.published_at, clone.started_at) == (
            "DRAFT", 0, False, None, None)
        assert not participants(clone.id) and service.pool_balance(clone.id) == 0
        shift = clone.start_at - source.start_at
        assert shift % timedelta(days=1) == timedelta(0) and shift > timedelta(0)  # whole days: same time of day
        assert clone.registration_opens_at > later >= clone.registration_opens_at - timedelta(days=1)
        for name in times:
            assert getattr(clone, name) - getattr(source, name) == shift, name  # every duration kept
        # A second clone gets its own slug; the clone can be published as it is.
        assert service.clone_competition(source.id, now=later).slug == f"{source.slug}-copy-2"
        assert service.publish_competition(clone.id, now=later).status == "SCHEDULED"
        assert_books_balance(app)


def test_clone_of_a_future_competition_keeps_its_times(app):
    with app.app_context():
        now = utcnow().replace(microsecond=0)
        source = service.create_competition(terms(registration_opens_at=now + timedelta(minutes=10)))
        clone = service.clone_competition(source.id, now=now)
        assert (clone.start_at, clone.end_at, clone.registration_opens_at) == (
            source.start_at, source.end_at, source.registration_opens_at)


def test_cloning_an_unknown_competition_is_a_clear_404_and_changes_nothing(app):
    with app.app_context():
        before = snapshot()
        with pytest.raises(NotFound, match="does not exist"):
            service.clone_competition(999_999)
        assert snapshot() == before
