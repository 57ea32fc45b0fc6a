"""Helpers for the leaderboard tests: a live competition with n participants."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from edutradex.competitions import lifecycle, service
from edutradex.competitions.models import Competition
from edutradex.extensions import db
from edutradex.types import utcnow
from tests.competitions.conftest import open_competition, participants, trader


def live_competition(n: int, *, ends_in: timedelta = timedelta(hours=1), **overrides):
    """A LIVE free competition with n traders; returns (competition id, [(participant id, user id)])."""
    competition = open_competition(entry_fee="0.00", max_participants=max(n, 2), **overrides)
    users = [trader("0") for _ in range(n)]
    for user_id in users:
        service.join_competition(competition.id, user_id)
    now = utcnow().replace(microsecond=0)
    start = now - timedelta(minutes=30)
    db.session.execute(update(Competition).where(Competition.id == competition.id).values(
        registration_opens_at=start - timedelta(hours=2), registration_closes_at=start, start_at=start,
        end_at=now + ends_in))
    db.session.commit()
    assert lifecycle.start_competition(competition.id, now) == "LIVE"
    return competition.id, [(p.id, p.user_id) for p in participants(competition.id)]


def login(client, user_id: int) -> None:
    """Log the client in as this user, through the real form. Call it outside an app
    context: requests made inside one share its `g`, and so the logged-in user."""
    from edutradex.auth.models import User
    from tests.factories import PASSWORD
    from tests.support.web import AuthActions

    with client.application.app_context():
        email = db.session.get(User, user_id).email
    assert AuthActions(client).login(email, PASSWORD).status_code == 302
