"""Admin: competitions. Create and edit with each refusal next to its field, publish,
cancel with refunds, participants, disqualification; every action audited; bad input
changes nothing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from edutradex.competitions import service
from edutradex.competitions.models import Competition
from edutradex.extensions import db
from edutradex.types import utcnow
from tests.admin.conftest import audit_count, audit_entries
from tests.competitions.conftest import assert_books_balance, balance, fund, open_competition, participants
from tests.factories import make_user


def form(**overrides) -> dict:
    now = utcnow().replace(microsecond=0, second=0)
    fmt = "%Y-%m-%dT%H:%M"
    base = {
        "name": "Admin Cup", "slug": "", "kind": "CFD", "entry_fee": "10.00", "starting_capital": "10000",
        "min_participants": "1", "max_participants": "5",
        "registration_opens_at": (now - timedelta(hours=1)).strftime(fmt),
        "registration_closes_at": (now + timedelta(hours=1)).strftime(fmt),
        "start_at": (now + timedelta(hours=1)).strftime(fmt), "end_at": (now + timedelta(hours=2)).strftime(fmt),
        "allowed_markets": "", "lev_FX_MAJOR": "30", "lev_FX_OTHER": "20", "lev_SYNTHETIC": "10",
        "margin_call_percent": "100", "stop_out_percent": "50", "platform_fee_percent": "20",
        "prize_table": "70, 20, 10", "guaranteed_pool": "0", "max_rebuys": "0", "rebuy_fee": "0",
        "prize_requires_trade": "on", "description": "Trade well.",
    }
    base.update(overrides)
    return base


def count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Competition))


def test_traders_cannot_reach_the_section(app, client, auth):
    auth.register()
    assert client.get("/admin/competitions").status_code == 403


def test_create_publish_and_the_list(app, client, admin):
    assert "No competitions yet" in client.get("/admin/competitions").get_data(as_text=True)
    assert "Create draft" in client.get("/admin/competitions/new").get_data(as_text=True)
    response = admin.post("/admin/competitions/new", form())
    assert response.status_code == 302
    with app.app_context():
        c = db.session.scalar(select(Competition))
        assert (c.slug, c.status, c.entry_fee, c.prize_table) == ("admin-cup", "DRAFT", Decimal("10.00"),
                                                                  ["70.00", "20.00", "10.00"])
        assert c.max_leverage == {"FX_MAJOR": 30, "FX_OTHER": 20, "SYNTHETIC": 10} and c.prize_requires_trade
        cid = c.id
    assert "Admin Cup" in client.get("/admin/competitions").get_data(as_text=True)
    assert admin.post(f"/admin/competitions/{cid}/publish").status_code == 302
    with app.app_context():
        assert db.session.get(Competition, cid).status == "SCHEDULED"
    actions = [e.action for e in audit_entries(app)]
    assert actions == ["competition.create", "competition.publish"]


@pytest.mark.parametrize("field, value, message", [
    ("entry_fee", "-1", "Entry fee: must be at least 0"),
    ("entry_fee", "NaN", "Entry fee: enter a number"),
    ("entry_fee", "1.001", "Entry fee: use at most 2 decimal places"),
    ("entry_fee", "99999999999999999999", "Entry fee: must be at most"),
    ("starting_capital", "0", "Starting capital: must be more than 0"),
    ("end_at", "2020-01-01T00:00", "The end must be after the start"),
    ("prize_table", "80, 30", "more than 100 %"),
    ("prize_table", "70, -5", "Prize for rank 2"),
    ("allowed_markets", "NOPE_XYZ", "Allowed markets: unknown market"),
    ("max_participants", "abc", "Maximum participants: enter a whole number"),
    ("lev_SYNTHETIC", "0", "Max leverage for SYNTHETIC"),
    ("name", "", "Name: at least 3 characters"),
])
def test_bad_terms_are_shown_next_to_their_field_and_nothing_is_created(app, client, admin, field, value, message):
    response = admin.post("/admin/competitions/new", form(**{field: value}))
    assert response.status_code in (400, 422)
    html = response.get_data(as_text=True)
    assert message in html
    assert f'id="cf-{field}-error"' in html  # under its field
    assert f'value="{value}"' in html or field == "name"  # what was typed stays
    assert count(app) == 0 and audit_count(app) == 0


def test_edit_while_draft_then_only_the_description_after_the_first_entrant(app, client, admin):
    with app.app_context():
        cid = open_competition().id
    page = client.get(f"/admin/competitions/{cid}/edit").get_data(as_text=True)
    assert 'value="10.00"' in page and "terms-locked" not in page
    assert admin.post(f"/admin/competitions/{cid}/edit", form(entry_fee="12.50")).status_code == 302
    with app.app_context():
        assert db.session.get(Competition, cid).entry_fee == Decimal("12.50")
        trader = make_user().id
        fund(trader, "20.00")
        service.join_competition(cid, trader)
    assert "terms-locked" in client.get(f"/admin/competitions/{cid}/edit").get_data(as_text=True)
    # A forged post of the locked terms changes only the description.
    assert admin.post(f"/admin/competitions/{cid}/edit", form(entry_fee="1.00", description="New rules")).status_code == 302
    with app.app_context():
        c = db.session.get(Competition, cid)
        assert (c.entry_fee, c.description) == (Decimal("12.50"), "New rules")
    assert [e.action for e in audit_entries(app)][-2:] == ["competition.update", "competition.update_description"]


def test_cancel_refunds_everyone_and_needs_a_reason(app, client, admin):
    with app.app_context():
        c = open_competition()
        traders = [make_user().id for _ in range(2)]
        for t in traders:
            fund(t, "10.00")
            service.join_competition(c.id, t)
        cid = c.id
    before = audit_count(app)
    response = admin.post(f"/admin/competitions/{cid}/cancel", {"reason": ""}, htmx=True)
    assert response.status_code == 422 and "Give a reason" in response.get_data(as_text=True)
    assert audit_count(app) == before
    response = admin.post(f"/admin/competitions/{cid}/cancel", {"reason": "Server maintenance"}, htmx=True)
    assert response.status_code == 204
    with app.app_context():
        assert db.session.get(Competition, cid).status == "CANCELLED"
        assert [balance(t) for t in traders] == [Decimal("10.00"), Decimal("10.00")]
    assert audit_entries(app, "competition.cancel")[0].note == "Server maintenance"
    assert "2 participant(s) refunded" in client.get(f"/admin/competitions/{cid}").get_data(as_text=True)
    assert admin.post(f"/admin/competitions/{cid}/cancel", {"reason": "again"}, htmx=True).status_code == 409
    assert_books_balance(app)


def test_participants_and_disqualify_with_a_reason(app, client, admin):
    with app.app_context():
        c = open_competition()
        trader = make_user("cheat@example.com", name="Chea Ter").id
        fund(trader, "10.00")
        service.join_competition(c.id, trader)
        cid = c.id
    page = client.get(f"/admin/competitions/{cid}").get_data(as_text=True)
    assert "cheat@example.com" in page and "Participants (1)" in page
    url = f"/admin/competitions/{cid}/participants/{trader}/disqualify"
    assert admin.post(url, {"reason": "x"}, htmx=True).status_code == 422
    with app.app_context():
        assert not participants(cid)[0].disqualified
    assert admin.post(url, {"reason": "Multiple accounts"}, htmx=True).status_code == 204
    with app.app_context():
        p = participants(cid)[0]
        assert p.disqualified and p.disqualify_reason == "Multiple accounts"
        assert balance(trader) == Decimal("0.00")  # fee not refunded
    assert audit_entries(app, "competition.disqualify")[0].note == "Multiple accounts"
    assert "disqualified: Multiple accounts" in client.get(f"/admin/competitions/{cid}").get_data(as_text=True)
    assert admin.post(f"/admin/competitions/{cid}/participants/999999/disqualify", {"reason": "nobody"},
                      htmx=True).status_code == 404


def test_unknown_competition_and_missing_csrf(app, client, admin):
    assert client.get("/admin/competitions/999999").status_code == 404
    assert client.post("/admin/competitions/new", data=form()).status_code == 400  # no CSRF token
    assert count(app) == 0


def test_a_refused_edit_shows_the_error_by_its_field_and_changes_nothing(app, client, admin):
    with app.app_context():
        cid = open_competition().id
    before = audit_count(app)
    response = admin.post(f"/admin/competitions/{cid}/edit", form(platform_fee_percent="100.5"))
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and 'id="cf-platform_fee_percent-error"' in html
    assert "Platform fee: must be at most 100" in html and 'value="100.5"' in html
    with app.app_context():
        assert db.session.get(Competition, cid).platform_fee_percent == Decimal("20.00")
    assert audit_count(app) == before


def test_clone_makes_an_audited_draft_ready_to_edit_and_an_unknown_id_is_a_404(app, client, admin):
    with app.app_context():
        cid = open_competition(name="Friday Cup").id
    before = count(app)
    response = admin.post(f"/admin/competitions/{cid}/clone")
    assert response.status_code == 302
    with app.app_context():
        clone = db.session.scalar(select(Competition).where(Competition.id != cid))
        assert (clone.name, clone.slug, clone.status) == ("Friday Cup (copy)", "friday-cup-copy", "DRAFT")
        assert response.headers["Location"].endswith(f"/admin/competitions/{clone.id}/edit")
    assert "Friday Cup (copy)" in client.get(response.headers["Location"]).get_data(as_text=True)
    entry = audit_entries(app)[-1]
    assert (entry.action, entry.target_id, entry.note) == ("competition.clone", str(clone.id),
                                                           f"cloned from competition {cid}")
    assert admin.post("/admin/competitions/999999/clone").status_code == 404
    assert client.post(f"/admin/competitions/{cid}/clone").status_code == 400  # no CSRF token
    assert count(app) == before + 1


def test_repeats_is_a_term_of_the_form_editable_like_the_others(app, client, admin):
    page = client.get("/admin/competitions/new").get_data(as_text=True)
    assert 'name="repeats"' in page and ">weekly</option>" in page
    base = form()  # one set of times: only the repeats changes below
    response = admin.post("/admin/competitions/new", {**base, "repeats": "WEEKLY"})
    assert response.status_code == 302
    with app.app_context():
        c = db.session.scalar(select(Competition))
        assert c.repeats == "WEEKLY"
        cid = c.id
    assert '<option value="WEEKLY" selected' in client.get(f"/admin/competitions/{cid}/edit").get_data(as_text=True)
    assert admin.post(f"/admin/competitions/{cid}/edit", {**base, "repeats": "DAILY"}).status_code == 302
    entry = audit_entries(app)[-1]
    assert (entry.action, entry.before, entry.after) == ("competition.update", {"repeats": "WEEKLY"},
                                                         {"repeats": "DAILY"})
    response = admin.post(f"/admin/competitions/{cid}/edit", {**base, "repeats": "HOURLY"})
    assert response.status_code == 422 and "Repeats: none, daily or weekly." in response.get_data(as_text=True)
    assert admin.post(f"/admin/competitions/{cid}/edit", {**base, "repeats": ""}).status_code == 302
    with app.app_context():
        assert db.session.get(Competition, cid).repeats is None


def test_the_detail_page_links_a_recurring_competition_to_its_next_instance(app, client, admin):
    from edutradex.competitions import lifecycle

    with app.app_context():
        competition = open_competition(min_participants=1, repeats="WEEKLY")
        lifecycle.start_competition(competition.id, now=competition.start_at)
        cid, next_id = competition.id, service.next_instance_id(competition.id)
    assert next_id is not None
    page = client.get(f"/admin/competitions/{cid}").get_data(as_text=True)
    assert "weekly" in page and f'href="/admin/competitions/{next_id}" data-testid="admin-next"' in page
    assert f'href="/admin/competitions/{cid}">previous instance' in client.get(
        f"/admin/competitions/{next_id}").get_data(as_text=True)
    with app.test_request_context():
        from flask import url_for

        audit_url = url_for("admin.audit_log", target_type="competition", target_id=next_id)
    response = client.get(audit_url)
    assert response.status_code == 200 and "competition.schedule_next" in response.get_data(as_text=True)


def test_the_page_says_what_a_guarantee_the_platform_cannot_cover_needs(app, client, admin):
    from edutradex.competitions import lifecycle
    from tests.competitions.conftest import trader

    with app.app_context():
        competition = open_competition(name='Cup "Spring"', entry_fee="10.00", guaranteed_pool="500.00")
        user = trader()
        service.join_competition(competition.id, user)
        [p] = participants(competition.id)
        p.equity = p.cash = Decimal("10500.00")
        p.trades_count = 1
        db.session.commit()
        cid, end = competition.id, competition.end_at + timedelta(seconds=1)
        lifecycle.run_overdue(end)
    page = client.get(f"/admin/competitions/{cid}").get_data(as_text=True)
    assert 'data-testid="guarantee-shortfall"' in page
    assert "needs a top-up of\n  <b class=\"mono\">342.00</b>" in page and "<b class=\"mono\">2.00</b>" in page
    assert 'flask wallet fund-revenue 340.00 --reason "Guarantee of Cup &#34;Spring&#34;"' in page  # escaped
    public = client.get(f"/competitions/{cid}").get_data(as_text=True)
    assert "The prizes wait for the organisers to fund the guaranteed pool" in public and "342.00" not in public
    with app.app_context():
        assert app.test_cli_runner().invoke(args=["wallet", "fund-revenue", "340.00", "--reason", "Spring"]).exit_code == 0
        assert lifecycle.run_overdue(end) == 1
    assert 'data-testid="guarantee-shortfall"' not in client.get(f"/admin/competitions/{cid}").get_data(as_text=True)
