"""The per-user limit under a real race on PostgreSQL: eight alerts set at the same instant by
one user with one place left; exactly one is created, the others are refused."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from edutradex.alerts import service
from edutradex.alerts.models import PriceAlert
from edutradex.errors import Conflict
from edutradex.extensions import db
from edutradex.market.service import seed_markets
from tests.alerts.conftest import EUR, Ticks
from tests.factories import make_user
from tests.support.concurrency import run_in_threads

pytestmark = pytest.mark.postgres


def test_the_last_place_goes_to_one_alert_only(pg_app):
    pg_app.config["ALERTS_PER_USER"] = 3
    with pg_app.app_context():
        seed_markets()
        Ticks()(EUR, "1.08500")
        user_id = make_user().id
        for level in ("1.09000", "1.09100"):
            service.create_alert(user_id, EUR, "ABOVE", level)
    outcomes = run_in_threads(pg_app, 8, lambda i: service.create_alert(user_id, EUR, "ABOVE", f"1.0{9200 + i}").id)
    created = [o for o in outcomes if isinstance(o, int)]
    refused = [o for o in outcomes if isinstance(o, Conflict)]
    assert len(created) == 1 and len(refused) == 7, outcomes
    assert "the most allowed (3)" in refused[0].message
    with pg_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(PriceAlert)) == 3
