"""The header's balance badge shows the account the page trades with: the demo balance on
rise/fall pages, the participant's competition account on a competition's page, the credit
wallet on the wallet page. Each view chooses; nothing is guessed from the URL."""

from __future__ import annotations

import re
from decimal import Decimal

from sqlalchemy import select

from edutradex.auth.models import User
from edutradex.competitions import service
from edutradex.competitions.models import Participant
from edutradex.extensions import db
from edutradex.trading_account import short_name
from tests.binary.conftest import make_market
from tests.competitions.conftest import fund, open_competition


def badge(html: str) -> tuple[str, str, str]:
    """(kind, label, amount text) of the header's badge."""
    match = re.search(r'data-testid="trading-account" data-account="([a-z]+)">\s*'
                      r'<span class="balance-label">([^<]*)</span>\s*<span[^>]*>(.*?)</span>\s*</a>', html, re.S)
    assert match, "no trading-account badge in the header"
    kind, label, amount = match.groups()
    return kind, label, re.sub(r"<[^>]+>", "", amount).strip()


def joe(app, auth, credits="100.00") -> int:
    auth.register()
    with app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.email == "joe@example.com"))
        fund(user_id, credits)
        return user_id


def test_rise_fall_pages_show_the_demo_balance(app, client, auth):
    joe(app, auth)
    with app.app_context():
        make_market()
        db.session.commit()
    html = client.get("/trade/OTC_EUR_USD").get_data(as_text=True)
    assert badge(html) == ("demo", "Demo", "10,000.00")
    assert 'id="demo-balance"' in html  # the live balance update still finds it


def test_a_participant_sees_the_competition_account_on_its_page(app, client, auth):
    user_id = joe(app, auth)
    with app.app_context():
        cup = open_competition(name="CUP", entry_fee="10.00", starting_capital="10000.00")
        service.join_competition(cup.id, user_id)
        participant = db.session.scalar(select(Participant).where(Participant.user_id == user_id))
        participant.equity = Decimal("10250.50")  # as after a winning trade
        db.session.commit()
        cup_id = cup.id
    html = client.get(f"/competitions/{cup_id}").get_data(as_text=True)
    assert badge(html) == ("competition", "CUP", "10,250.50 USD")
    assert 'id="demo-balance"' not in html
    assert f'href="/competitions/{cup_id}" title="CUP: your competition account' in html
    # Elsewhere the same trader is back on the demo balance.
    assert badge(client.get("/competitions").get_data(as_text=True))[0] == "demo"


def test_a_visitor_who_is_not_in_the_competition_sees_the_demo_balance(app, client, auth):
    joe(app, auth)
    with app.app_context():
        cup_id = open_competition(name="Someone else's cup").id
    assert badge(client.get(f"/competitions/{cup_id}").get_data(as_text=True))[0] == "demo"


def test_a_long_competition_name_is_shortened_in_the_badge(app, client, auth):
    user_id = joe(app, auth)
    with app.app_context():
        cup = open_competition(name="The Grand Weekly Synthetic Indices Championship", entry_fee="0")
        service.join_competition(cup.id, user_id)
        cup_id = cup.id
    kind, label, amount = badge(client.get(f"/competitions/{cup_id}").get_data(as_text=True))
    assert (kind, label, amount) == ("competition", "The Grand Wee…", "10,000.00 USD")
    assert short_name("CUP") == "CUP" and len(label) == 14


def test_the_wallet_page_shows_the_credit_wallet(app, client, auth):
    joe(app, auth, credits="42.50")
    html = client.get("/wallet").get_data(as_text=True)
    assert badge(html) == ("credits", "Credits", "42.50")
