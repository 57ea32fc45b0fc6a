"""Admin: a competition's rule set in the form (each blank is off), each bad value refused
next to its field with nothing written, locked like the other terms once someone joined."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from edutradex.competitions import service
from edutradex.competitions.models import Competition
from edutradex.errors import Conflict
from edutradex.extensions import db
from tests.admin.conftest import audit_count
from tests.admin.test_competitions import count, form
from tests.competitions.conftest import fund, open_competition
from tests.competitions.test_engine import EUR, Ticks, open_position, started
from tests.competitions.test_rules import ruled
from tests.factories import make_user

RULES = {"max_daily_loss_percent": "5", "max_total_loss_percent": "10", "min_trading_days": "1",
         "max_open_positions": "3", "max_lots_per_order": "2.5", "breach_action": "DISQUALIFY"}


def test_the_rule_set_is_saved_from_the_form_and_shown_on_the_competition_page(app, client, admin):
    assert 'name="breach_action"' in client.get("/admin/competitions/new").get_data(as_text=True)
    assert admin.post("/admin/competitions/new", form(**RULES)).status_code == 302
    with app.app_context():
        c = db.session.scalar(select(Competition))
        assert (c.max_daily_loss_percent, c.max_total_loss_percent, c.min_trading_days, c.max_open_positions,
                c.max_lots_per_order, c.breach_action) == (Decimal("5.00"), Decimal("10.00"), 1, 3,
                                                           Decimal("2.5000"), "DISQUALIFY")
        cid = c.id
    edit = client.get(f"/admin/competitions/{cid}/edit").get_data(as_text=True)
    assert 'value="5.00"' in edit and '<option value="DISQUALIFY" selected' in edit
    assert admin.post(f"/admin/competitions/{cid}/publish").status_code == 302
    page = client.get(f"/competitions/{cid}").get_data(as_text=True)
    assert "below your balance at the start of the UTC day minus 5.00 % of the starting capital (500.00 USD)" in page
    assert "must not fall below 9,000.00 USD" in page
    assert "at least 1 different UTC day," in page and "At most 3 open positions at a time." in page
    assert "At most 2.5 lots per order." in page and "disqualifies you" in page


def test_blank_rules_are_off_and_the_page_shows_no_rule_set(app, client, admin):
    assert admin.post("/admin/competitions/new", form()).status_code == 302
    with app.app_context():
        c = db.session.scalar(select(Competition))
        assert (c.max_daily_loss_percent, c.max_total_loss_percent, c.min_trading_days, c.max_open_positions,
                c.max_lots_per_order, c.breach_action) == (None, None, None, None, None, "FLAG")
        service.publish_competition(c.id)
        cid = c.id
    assert 'data-testid="rule-set"' not in client.get(f"/competitions/{cid}").get_data(as_text=True)


@pytest.mark.parametrize("field, value, message", [
    ("max_daily_loss_percent", "-1", "Max daily loss: must be more than 0"),
    ("max_daily_loss_percent", "0", "Max daily loss: must be more than 0"),
    ("max_daily_loss_percent", "100.01", "Max daily loss: must be at most 100"),
    ("max_total_loss_percent", "ten", "Max total loss: enter a number"),
    ("max_total_loss_percent", "150", "Max total loss: must be at most 100"),
    ("min_trading_days", "1.5", "Min trading days: enter a whole number"),
    ("min_trading_days", "9", "Min trading days: the competition trades on"),
    ("max_open_positions", "0", "Max open positions: between 1 and 1,000"),
    ("max_open_positions", "x", "Max open positions: enter a whole number"),
    ("max_lots_per_order", "-2", "Max lots per order: must be more than 0"),
    ("max_lots_per_order", "abc", "Max lots per order: enter a number"),
    ("breach_action", "BAN", "Breach action: DISQUALIFY or FLAG"),
])
def test_bad_rules_are_shown_next_to_their_field_and_nothing_is_created(app, client, admin, field, value, message):
    response = admin.post("/admin/competitions/new", form(**{field: value}))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert message in html
    assert f'id="cf-{field}-error"' in html
    assert count(app) == 0 and audit_count(app) == 0


def test_a_rise_fall_competition_takes_only_the_trading_days(app, client, admin):
    response = admin.post("/admin/competitions/new", form(kind="RISE_FALL", max_open_positions="2"))
    assert response.status_code == 422
    assert "Rule set: a rise/fall competition takes only the minimum trading days" in response.get_data(as_text=True)
    assert count(app) == 0


def test_the_rules_are_locked_once_someone_joined(app, client, admin):
    with app.app_context():
        cid = open_competition().id
    assert admin.post(f"/admin/competitions/{cid}/edit", form(max_daily_loss_percent="4")).status_code == 302
    with app.app_context():
        assert db.session.get(Competition, cid).max_daily_loss_percent == Decimal("4.00")
        trader = make_user().id
        fund(trader, "20.00")
        service.join_competition(cid, trader)
        with pytest.raises(Conflict, match="The terms are locked"):
            service.update_competition(cid, {"max_daily_loss_percent": "1"})
    # a forged post changes only the description
    assert admin.post(f"/admin/competitions/{cid}/edit",
                      form(max_daily_loss_percent="1", breach_action="DISQUALIFY")).status_code == 302
    with app.app_context():
        c = db.session.get(Competition, cid)
        assert (c.max_daily_loss_percent, c.breach_action) == (Decimal("4.00"), "FLAG")


def test_the_admin_competition_page_lists_the_breaches(app, client, admin):
    from edutradex.market import quotes

    quotes.clear_local_quotes()
    with app.app_context():
        competition_id, participant_id, _ = ruled(max_total_loss_percent="10", breach_action="FLAG")
        record = Ticks()
        open_position(participant_id, record(EUR, "1.10000", "1.10000"), "10")
        engine = started(app)
        below = record(EUR, "1.08000", "1.08000")
        engine([below])
    html = client.get(f"/admin/competitions/{competition_id}").get_data(as_text=True)
    assert 'data-testid="admin-breaches"' in html
    assert "TOTAL_LOSS" in html and "FLAG" in html and str(below.id) in html
    assert "max total loss: equity 80,000.00 &lt; floor 90,000.00" in html
