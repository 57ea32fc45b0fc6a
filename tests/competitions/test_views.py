"""The trader pages over HTTP: the lobby's tabs, the competition page, joining with a
confirmation, leaving, "My competitions"; bad input gets a clear 4xx and changes nothing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from edutradex.auth.models import User
from edutradex.competitions import lifecycle, pages, service
from edutradex.extensions import db
from edutradex.types import utcnow
from tests.competitions.conftest import assert_books_balance, balance, fund, open_competition, participants, terms
from tests.factories import make_admin, make_user


def me(email="joe@example.com") -> int:
    return db.session.scalar(select(User.id).where(User.email == email))


def hx(client, auth, path, data=None):
    return client.post(path, data=data or {}, headers=auth.htmx_headers("/competitions"))


@pytest.fixture
def trader(app, auth):
    """Joe, logged in, with 100 credits."""
    auth.register()
    with app.app_context():
        fund(me(), "100.00")
        return me()


def test_the_pages_need_an_account(client):
    for path in ("/competitions", "/competitions/mine", "/competitions/1"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_lobby_has_tabs_empty_states_and_the_navigation_link(client, trader):
    page = client.get("/competitions").get_data(as_text=True)
    assert 'href="/competitions"' in page  # in the main navigation
    assert "No competition is open for registration right now" in page
    assert "No competition is running right now" in client.get("/competitions?tab=live").get_data(as_text=True)
    assert "No competition has finished yet" in client.get("/competitions?tab=finished").get_data(as_text=True)
    assert "not joined a competition yet" in client.get("/competitions/mine").get_data(as_text=True)
    # Forgiving navigation: an unknown tab or page is the first one, never an error.
    assert client.get("/competitions?tab=<script>&page=-3").status_code == 200
    assert client.get("/competitions?page=99999999999999999999").status_code == 200


def test_the_lobby_shows_fee_pool_prizes_seats_and_countdown(app, client, trader):
    with app.app_context():
        c = open_competition(guaranteed_pool="50.00")
        for _ in range(3):
            other = make_user().id
            fund(other, "20.00")
            service.join_competition(c.id, other)
        draft = service.create_competition(terms(name="Secret draft"))
        cid, draft_id = c.id, draft.id
    page = client.get("/competitions").get_data(as_text=True)
    assert c.name in page and "Secret draft" not in page
    assert 'data-testid="fee">10.00' in page and 'data-testid="pool">30.00' in page
    assert 'data-testid="guaranteed">50.00' in page and 'data-testid="seats">3 / 10' in page
    # Pool 30 - 20 % fee = 24 net, below the 50 guarantee: prizes from 50 (70/20/10).
    assert "#1 35.00, #2 10.00, #3 5.00" in page
    assert 'data-seconds-left="' in page and "Starts in" in page
    assert client.get(f"/competitions/{draft_id}").status_code == 404
    assert client.get(f"/competitions/{cid}").status_code == 200


def test_the_competition_page_shows_terms_rules_prizes_and_participants(app, client, trader):
    with app.app_context():
        c = open_competition(rebuys_allowed="on", max_rebuys=2, rebuy_fee="5.00", prize_requires_trade="on")
        other = make_user(name="Alice Rival").id
        fund(other, "20.00")
        service.join_competition(c.id, other)
        cid = c.id
    page = client.get(f"/competitions/{cid}").get_data(as_text=True)
    for text in ("10,000.00 USD (virtual)", "major FX 30:1", "synthetic indices 10:1", "100.00 % / 50.00 % margin level",
                 "20.00 % of the pool", "up to 2 at 5.00 credits each", "share the rank and split the prizes",
                 "made no trade wins no prize", "Alice Rival", 'data-testid="seats">1 / 10', "Join…"):
        assert text in page, text
    # Pool 10 - 2 fee = 8 net: 5.60 / 1.60 / 0.80.
    assert "5.60" in page and "1.60" in page and "0.80" in page


def test_join_through_the_confirmation_then_leave(app, client, auth, trader):
    with app.app_context():
        cid = open_competition().id
    confirm = client.get(f"/competitions/{cid}/join", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'data-testid="balance-after">90.00' in confirm and "Pay 10.00 credits and join" in confirm
    response = hx(client, auth, f"/competitions/{cid}/join")
    assert response.status_code == 204 and response.headers["HX-Redirect"] == f"/competitions/{cid}"
    page = client.get(f"/competitions/{cid}").get_data(as_text=True)
    assert "You joined" in page and 'data-testid="pool">10.00' in page and "Leave and get 10.00 credits back" in page
    assert 'data-testid="joined-badge"' in client.get("/competitions").get_data(as_text=True)
    assert "Weekly FX Cup" in client.get("/competitions/mine").get_data(as_text=True)
    with app.app_context():
        assert balance(trader) == Decimal("90.00")
    response = hx(client, auth, f"/competitions/{cid}/leave")
    assert response.status_code == 204
    assert "10.00 credits refunded" in client.get(f"/competitions/{cid}").get_data(as_text=True)
    with app.app_context():
        assert balance(trader) == Decimal("100.00")
    assert_books_balance(app)


def test_a_plain_form_post_joins_and_redirects(app, client, auth, trader):
    with app.app_context():
        cid = open_competition().id
    page = client.get(f"/competitions/{cid}/join").get_data(as_text=True)  # without JavaScript: a page
    assert "Join Weekly FX Cup" in page
    from tests.support.web import csrf_token
    response = client.post(f"/competitions/{cid}/join", data={"csrf_token": csrf_token(client, f"/competitions/{cid}")})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/competitions/{cid}")


def _state(app, cid, user_id):
    with app.app_context():
        return balance(user_id), [(p.user_id, p.status) for p in participants(cid)], service.pool_balance(cid)


def test_joining_twice_is_refused_and_changes_nothing(app, client, auth, trader):
    with app.app_context():
        cid = open_competition().id
    assert hx(client, auth, f"/competitions/{cid}/join").status_code == 204
    before = _state(app, cid, trader)
    response = hx(client, auth, f"/competitions/{cid}/join")  # the replayed form
    assert response.status_code == 409 and "already in this competition" in response.get_data(as_text=True)
    assert response.headers["HX-Retarget"] == "#toasts"
    assert _state(app, cid, trader) == before
    assert_books_balance(app)


@pytest.mark.parametrize("case, status, message", [
    ("full", 409, "This competition is full."),
    ("closed", 409, "Registration is closed."),
    ("cancelled", 409, "This competition was cancelled."),
    ("live", 409, "already started"),
    ("poor", 400, "Not enough credits: the entry fee is 150.00 credits."),
    ("unknown", 404, "does not exist"),
    ("draft", 404, ""),
])
def test_joins_that_cannot_happen_are_refused_and_change_nothing(app, client, auth, trader, case, status, message):
    now = utcnow().replace(microsecond=0)
    with app.app_context():
        if case == "full":
            c = open_competition(max_participants=1)
            other = make_user().id
            fund(other, "10.00")
            service.join_competition(c.id, other)
        elif case == "closed":
            c = service.create_competition(terms(registration_opens_at=now - timedelta(hours=2),
                                                 registration_closes_at=now + timedelta(seconds=2)))
            service.publish_competition(c.id)
            db.session.execute(db.update(type(c)).where(type(c).id == c.id)
                               .values(registration_closes_at=now - timedelta(minutes=1)))
            db.session.commit()
        elif case == "cancelled":
            c = open_competition()
            service.cancel_competition(c.id, "Not enough interest")
        elif case == "live":
            c = open_competition(registration_closes_at=now + timedelta(seconds=30), start_at=now + timedelta(seconds=30))
            other = make_user().id
            fund(other, "10.00")
            service.join_competition(c.id, other)
            lifecycle.start_competition(c.id, now=now + timedelta(seconds=31))
        elif case == "poor":
            c = open_competition(entry_fee="150.00")
        elif case == "draft":
            c = service.create_competition(terms())
        cid = 999999 if case == "unknown" else c.id
    before = _state(app, cid, trader)
    response = hx(client, auth, f"/competitions/{cid}/join")
    assert response.status_code == status
    assert message in response.get_data(as_text=True)
    assert _state(app, cid, trader) == before
    assert_books_balance(app)


def test_leaving_after_the_start_or_without_being_in_is_refused(app, client, auth, trader):
    now = utcnow().replace(microsecond=0)
    with app.app_context():
        c = open_competition(registration_closes_at=now + timedelta(seconds=30), start_at=now + timedelta(seconds=30))
        cid = c.id
        service.join_competition(cid, trader)
        other_c = open_competition().id
        lifecycle.start_competition(cid, now=now + timedelta(seconds=31))
    before = _state(app, cid, trader)
    response = hx(client, auth, f"/competitions/{cid}/leave")
    assert response.status_code == 409 and "can no longer leave" in response.get_data(as_text=True)
    assert _state(app, cid, trader) == before
    response = hx(client, auth, f"/competitions/{other_c}/leave")  # not in it
    assert response.status_code == 409 and "not in this competition" in response.get_data(as_text=True)
    assert_books_balance(app)


def test_missing_csrf_is_refused_and_changes_nothing(app, client, trader):
    with app.app_context():
        cid = open_competition().id
    before = _state(app, cid, trader)
    response = client.post(f"/competitions/{cid}/join", headers={"HX-Request": "true"})
    assert response.status_code == 400 and "security token" in response.get_data(as_text=True)
    assert client.post(f"/competitions/{cid}/join", data={"csrf_token": "forged"}).status_code == 400
    assert _state(app, cid, trader) == before


def test_results_after_settlement(app, client, trader):
    now = utcnow().replace(microsecond=0)
    with app.app_context():
        c = open_competition(registration_closes_at=now + timedelta(seconds=30), start_at=now + timedelta(seconds=30),
                             end_at=now + timedelta(seconds=32), prize_requires_trade=False)
        cid = c.id
        service.join_competition(cid, trader)
        lifecycle.start_competition(cid, now=now + timedelta(seconds=31))
        lifecycle.end_competition(cid, now=now + timedelta(seconds=33))
        lifecycle.settle_competition(cid, now=now + timedelta(seconds=34))
    page = client.get(f"/competitions/{cid}").get_data(as_text=True)
    # One trader, pool 10 - 2 fee = 8 net, rank 1 takes 70 % = 5.60.
    assert "Results (1)" in page and "Prizes paid" in page
    assert 'data-testid="my-result">Your result: rank 1' in page and "5.60" in page
    assert "Weekly FX Cup" in client.get("/competitions?tab=finished").get_data(as_text=True)
    assert "Rank 1" in client.get("/competitions/mine").get_data(as_text=True)


def test_rebuy_button_only_while_live_and_below_the_starting_capital(app, client, auth, trader):
    now = utcnow().replace(microsecond=0)
    with app.app_context():
        c = open_competition(registration_closes_at=now + timedelta(seconds=30), start_at=now + timedelta(seconds=30),
                             rebuys_allowed="on", max_rebuys=1, rebuy_fee="5.00")
        cid = c.id
        service.join_competition(cid, trader)
        lifecycle.start_competition(cid, now=now + timedelta(seconds=31))
    page = client.get(f"/competitions/{cid}").get_data(as_text=True)
    assert 'data-testid="my-account"' in page and 'data-testid="rebuy"' not in page  # at the starting capital
    live = client.get("/competitions?tab=live").get_data(as_text=True)
    assert "Ends in" in live and 'data-testid="competition-status">Live' in live
    assert "No competition is open for registration" in client.get("/competitions").get_data(as_text=True)
    before = _state(app, cid, trader)
    response = hx(client, auth, f"/competitions/{cid}/rebuy")
    assert response.status_code == 409 and "below the starting capital" in response.get_data(as_text=True)
    assert _state(app, cid, trader) == before
    with app.app_context():  # losses, as the CFD engine will record them
        participant = participants(cid)[0]
        participant.equity = participant.cash = Decimal("4000.00")
        db.session.commit()
    assert "Rebuy for 5.00 credits" in client.get(f"/competitions/{cid}").get_data(as_text=True)
    assert hx(client, auth, f"/competitions/{cid}/rebuy").status_code == 204
    page = client.get(f"/competitions/{cid}").get_data(as_text=True)
    assert "Rebuy 1: your account is back to 10,000.00 USD" in page and 'data-testid="rebuy"' not in page
    with app.app_context():
        assert balance(trader) == Decimal("85.00") and service.pool_balance(cid) == Decimal("15.00")
    assert hx(client, auth, f"/competitions/{cid}/rebuy").status_code == 409  # all rebuys used
    assert_books_balance(app)


def test_the_joined_badge_on_every_lobby_page(app, client, trader):
    """The badge comes from the page's competitions, not from the first page of "My competitions"."""
    with app.app_context():
        fund(trader, "1000.00")
        ids = [open_competition(entry_fee="1.00").id for _ in range(pages.PAGE_SIZE + 2)]
        for cid in ids:
            service.join_competition(cid, trader)
    badges = sum(client.get(f"/competitions?page={n}").get_data(as_text=True).count('data-testid="joined-badge"')
                 for n in (1, 2))
    assert badges == len(ids)


def test_closed_to_traders_with_the_switch_off(tmp_path):
    """COMPETITIONS_OPEN=0: no lobby, no link, no join, no terminal; admins can still prepare
    competitions and are told why traders do not see them."""
    from tests.conftest import build_app
    from tests.support.web import AuthActions

    app = build_app(f"sqlite:///{tmp_path / 'closed.db'}", COMPETITIONS_OPEN=False)
    with app.app_context():
        cid = open_competition().id
        make_user("joe@example.com")
        make_admin("boss@example.com")
    trader_client, admin_client = app.test_client(), app.test_client()
    AuthActions(trader_client).login(email="joe@example.com")
    AuthActions(admin_client).login(email="boss@example.com")
    for path in ("/competitions", f"/competitions/{cid}", "/competitions/mine", f"/competitions/{cid}/rise-fall"):
        assert trader_client.get(path).status_code == 404
    assert trader_client.post(f"/competitions/{cid}/join").status_code in (400, 404)  # CSRF or no route: nothing joins
    dashboard = trader_client.get("/").get_data(as_text=True)
    assert 'href="/competitions"' not in dashboard
    admin_list = admin_client.get("/admin/competitions").get_data(as_text=True)
    assert 'data-testid="competitions-closed"' in admin_list and "COMPETITIONS_OPEN=0" in admin_list
    assert admin_client.get(f"/admin/competitions/{cid}").status_code == 200
    with app.app_context():
        assert participants(cid) == []
        db.session.remove()
        db.engine.dispose()
