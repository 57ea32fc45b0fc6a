"""Helpers for CFD tests: seeded markets, a LIVE competition with a funded account, and
the authority's latest quote."""

from __future__ import annotations

from decimal import Decimal

from edutradex.competitions import lifecycle, service
from edutradex.competitions.models import Participant
from edutradex.competitions.positions import At
from edutradex.extensions import db
from edutradex.market import quotes
from edutradex.market.service import seed_markets
from tests.competitions.conftest import open_competition, trader


def live_account(**overrides) -> tuple[int, int, int]:
    """(competition id, participant id, user id) of a LIVE competition with one trader
    (starting capital 10,000 USD unless overridden). Seeds the default markets."""
    seed_markets()
    competition = open_competition(min_participants=1, **overrides)
    user_id = trader()
    participant_id = service.join_competition(competition.id, user_id).participant_id
    assert lifecycle.start_competition(competition.id, competition.start_at) == "LIVE"
    return competition.id, participant_id, user_id


def join(competition_id: int) -> tuple[int, int]:
    """Another trader in the (already LIVE) competition: (participant id, user id)."""
    user_id = trader()
    participant = Participant(competition_id=competition_id, user_id=user_id, cash=Decimal("10000.00"),
                              equity=Decimal("10000.00"))
    db.session.add(participant)
    db.session.commit()
    return participant.id, user_id


def quote(symbol: str, bid: str, ask: str, *, tick_id: int | None = None, age_ms: int = 0) -> At:
    """Publish the latest quote of `symbol` (as the feed does) and return it as an At."""
    bid_d, ask_d = Decimal(bid), Decimal(ask)
    published = quotes.Quote(symbol, bid_d, ask_d, (bid_d + ask_d) / 2, tick_id, quotes.now_ms() - age_ms, "test")
    quotes.publish_quote(published)
    return At.of_quote(published)


def at(bid: str, ask: str, tick_id: int = 1, ts_ms: int = 1_700_000_000_000) -> At:
    return At(tick_id, ts_ms, Decimal(bid), Decimal(ask))


def account(participant_id: int) -> Participant:
    db.session.expire_all()
    return db.session.get(Participant, participant_id)
