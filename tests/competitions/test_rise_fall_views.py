"""The rise/fall trade page of a RISE_FALL competition over HTTP: the binary trade page
trading with the competition account, the header badge naming it, refusals as ticket
errors that change nothing, and the competition page's link while LIVE."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from edutradex.auth.models import User
from edutradex.binary.models import Trade
from edutradex.competitions import lifecycle, service
from edutradex.competitions.models import Competition, Participant
from edutradex.extensions import db
from edutradex.types import utcnow
from tests.binary.conftest import make_market, tick_and_quote  # noqa: F401
from tests.competitions.conftest import open_competition
from tests.factories import make_user
from tests.support.quotes import fresh_quotes  # noqa: F401 - autouse: no quote outlives a test

SYMBOL = "OTC_EUR_USD"
KEY_INPUT = re.compile(r'id="idempotency-key" name="idempotency_key" value="([^"]+)"')
D = Decimal


def make_live(competition_id: int) -> None:
    now = utcnow()
    db.session.execute(update(Competition).where(Competition.id == competition_id).values(
        registration_closes_at=now - timedelta(minutes=1), start_at=now - timedelta(seconds=30),
        end_at=now + timedelta(hours=1)))
    db.session.commit()
    assert lifecycle.start_competition(competition_id, now) == "LIVE"


@pytest.fixture
def joe(app, auth):
    """Joe, logged in, in a LIVE RISE_FALL competition (500 USD) that trades OTC markets only."""
    with app.app_context():
        make_market(SYMBOL)
        make_market("VOLATILITY_50", name="Volatility 50 Index", market_type="SYNTHETIC", precision=2,
                    initial_price=D("1000.00"))
        tick_and_quote(SYMBOL, "1.10000")
        user_id = make_user("joe@example.com").id
        competition = open_competition(kind="RISE_FALL", entry_fee="0", starting_capital="500.00",
                                       allowed_markets="OTC")
        service.join_competition(competition.id, user_id)
        make_live(competition.id)
    auth.login()
    return user_id, competition.id


def account(app, competition_id: int) -> tuple:
    with app.app_context():
        p = db.session.scalar(select(Participant).where(Participant.competition_id == competition_id))
        trades = db.session.scalar(select(func.count()).select_from(Trade))
        return p.cash, p.equity, p.trades_count, trades


def demo(app, user_id: int) -> Decimal:
    with app.app_context():
        return db.session.get(User, user_id).demo_balance


def page(client, competition_id: int) -> str:
    response = client.get(f"/competitions/{competition_id}/rise-fall/{SYMBOL}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def form(client, competition_id: int, **overrides) -> dict:
    data = {"symbol": SYMBOL, "direction": "UP", "stake": "10.00", "duration": "60",
            "idempotency_key": KEY_INPUT.search(page(client, competition_id)).group(1)}
    data.update(overrides)
    return data


def test_the_trade_page_trades_with_the_competition_account(client, joe):
    _, cid = joe
    response = client.get(f"/competitions/{cid}/rise-fall")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/competitions/{cid}/rise-fall/{SYMBOL}")
    html = page(client, cid)
    assert 'data-account="competition"' in html and 'data-account="demo"' not in html  # the header badge
    assert 'id="account-balance"' in html and "500.00" in html
    assert 'data-testid="competition-account"' in html and "not your demo balance" in html
    assert f'action="/competitions/{cid}/rise-fall/place"' in html
    assert f'data-activity-url="/competitions/{cid}/rise-fall/activity"' in html
    assert "Volatility 50 Index" not in html  # not an allowed market
    assert client.get(f"/competitions/{cid}/rise-fall/VOLATILITY_50").status_code == 404
    assert "full history" not in html
    assert "a demo-balance reset does not touch them" in html and "Resetting your demo balance" not in html


def test_htmx_placement_debits_the_competition_account_and_swaps_its_badge(app, client, auth, joe):
    user_id, cid = joe
    headers = auth.htmx_headers(f"/competitions/{cid}/rise-fall/{SYMBOL}")
    response = client.post(f"/competitions/{cid}/rise-fall/place", data=form(client, cid), headers=headers)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.count('data-testid="open-trade"') == 1
    assert 'id="account-balance"' in html and "490.00" in html and 'id="demo-balance"' not in html
    assert account(app, cid) == (D("490.00"), D("490.00"), 1, 1)
    assert demo(app, user_id) == D("10000.00")
    activity = client.get(f"/competitions/{cid}/rise-fall/activity", headers=headers).get_data(as_text=True)
    assert activity.count('data-testid="open-trade"') == 1 and "490.00" in activity
    # the demo page shows the demo account's trades only
    assert 'data-testid="open-trade"' not in client.get(f"/trade/{SYMBOL}").get_data(as_text=True)
    marks = client.get(f"/competitions/{cid}/rise-fall/{SYMBOL}/marks").get_json()
    assert len(marks["trades"]) == 1 and client.get(f"/trade/{SYMBOL}/marks").get_json()["trades"] == []


@pytest.mark.parametrize("overrides, message, status", [
    ({"stake": "500.01"}, "holds 500.00 USD", 409),
    ({"duration": "3600"}, "after the competition ends", 409),
    ({"symbol": "VOLATILITY_50"}, "not traded in this competition", 409),
])
def test_a_refused_trade_shows_its_reason_in_the_ticket_and_changes_nothing(app, client, auth, joe, overrides,
                                                                            message, status):
    _, cid = joe
    if overrides.get("duration"):  # the competition ends in 30 minutes: a 1-hour trade would outlive it
        with app.app_context():
            db.session.execute(update(Competition).where(Competition.id == cid)
                               .values(end_at=utcnow() + timedelta(minutes=30)))
            db.session.commit()
    if overrides.get("symbol"):
        with app.app_context():
            tick_and_quote("VOLATILITY_50", "1000.00")
    before = account(app, cid)
    response = client.post(f"/competitions/{cid}/rise-fall/place", data=form(client, cid, **overrides),
                           headers=auth.htmx_headers(f"/competitions/{cid}/rise-fall/{SYMBOL}"))
    assert response.status_code == status
    assert message in response.get_data(as_text=True)
    assert account(app, cid) == before


def test_outsiders_other_kinds_and_closed_competitions_are_refused(app, client, auth, joe):
    _, cid = joe
    with app.app_context():
        outsider_in = open_competition(kind="RISE_FALL", entry_fee="0")
        cfd = open_competition(entry_fee="0")
        scheduled = open_competition(kind="RISE_FALL", entry_fee="0")
        joe_id = db.session.scalar(select(User.id).where(User.email == "joe@example.com"))
        service.join_competition(cfd.id, joe_id)
        service.join_competition(scheduled.id, joe_id)
        service.join_competition(outsider_in.id, make_user().id)  # someone else's competition
        make_live(outsider_in.id)
        make_live(cfd.id)
        outsider_in, cfd, scheduled = outsider_in.id, cfd.id, scheduled.id
    assert client.get(f"/competitions/{outsider_in}/rise-fall/{SYMBOL}").status_code == 403
    assert client.get(f"/competitions/{cfd}/rise-fall/{SYMBOL}").status_code == 404
    not_yet = client.get(f"/competitions/{scheduled}/rise-fall/{SYMBOL}")
    assert not_yet.status_code == 302 and not_yet.headers["Location"].endswith(f"/competitions/{scheduled}")
    assert "has not started yet" in client.get(f"/competitions/{scheduled}").get_data(as_text=True)
    before = account(app, cid)
    refused = client.post(f"/competitions/{outsider_in}/rise-fall/place", data=form(client, cid),
                          headers=auth.htmx_headers(f"/competitions/{cid}/rise-fall/{SYMBOL}"))
    assert refused.status_code == 403 and "not in this competition" in refused.get_data(as_text=True)
    assert account(app, cid) == before


def test_the_competition_page_links_to_the_trade_page_while_live(app, client, joe):
    _, cid = joe
    html = client.get(f"/competitions/{cid}").get_data(as_text=True)
    assert f'href="/competitions/{cid}/rise-fall"' in html and 'data-testid="rise-fall-rules"' in html
    with app.app_context():
        scheduled = open_competition(kind="RISE_FALL", entry_fee="0")
        service.join_competition(scheduled.id, db.session.scalar(select(User.id).where(User.email == "joe@example.com")))
    assert "/rise-fall" not in client.get(f"/competitions/{scheduled}").get_data(as_text=True).replace(
        "rise-fall-rules", "")
