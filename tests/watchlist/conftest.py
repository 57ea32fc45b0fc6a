"""Watchlist fixtures: the seeded catalogue and a signed-in trader (another user too)."""

from __future__ import annotations

import pytest

from edutradex.extensions import db
from edutradex.market.service import seed_markets
from tests.factories import PASSWORD, make_user
from tests.market.conftest import clock  # noqa: F401 - the markets tests' fake server clock
from tests.support.quotes import fresh_quotes  # noqa: F401 - autouse: no quote outlives a test


@pytest.fixture
def users(app, auth):
    """{"me": id, "other": id}; "me" is signed in."""
    with app.app_context():
        seed_markets()
        ids = {"me": make_user("me@example.com").id, "other": make_user("other@example.com").id}
        db.session.remove()
    auth.login("me@example.com", PASSWORD)
    return ids
