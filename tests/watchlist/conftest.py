"""Watchlist fixtures: the seeded catalogue and a signed-in trader (another user too)."""

from __future__ import annotations

import pytest

from edutradex.extensions import db
from edutradex.market import quotes
from edutradex.market.service import seed_markets
from tests.factories import PASSWORD, make_user
from tests.market.conftest import FakeClock


@pytest.fixture(autouse=True)
def _fresh_quotes():
    quotes.clear_local_quotes()
    yield
    quotes.clear_local_quotes()


@pytest.fixture
def clock(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(quotes, "now_ms", clock.now_ms)
    return clock


@pytest.fixture
def users(app, auth):
    """{"me": id, "other": id}; "me" is signed in."""
    with app.app_context():
        seed_markets()
        ids = {"me": make_user("me@example.com").id, "other": make_user("other@example.com").id}
        db.session.remove()
    auth.login("me@example.com", PASSWORD)
    return ids
