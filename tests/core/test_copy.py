"""Honest copy: the landing page, dashboard and wallet promise only what this install has
(competitions since their pages exist, but no live leaderboard yet; live forex only with a
data provider), and deployer hints are for administrators."""

from __future__ import annotations

import re

from edutradex.extensions import db
from tests.factories import PASSWORD, make_admin


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_landing_page_promises_only_what_the_default_install_has(client):
    page = text_of(client.get("/").get_data(as_text=True))
    assert "the best ranks share the prize pool" in page  # the competition pages exist
    assert "leaderboard" not in page.lower()  # the live leaderboard does not, yet
    assert "live forex" not in page.lower() and "Forex from" not in page
    assert "simulated OTC currency pairs and volatility indices" in page


def test_landing_page_mentions_live_forex_once_a_provider_is_configured(app, client):
    app.config["TWELVEDATA_API_KEY"] = "key"
    page = text_of(client.get("/").get_data(as_text=True))
    assert "live forex" in page and "leaderboard" not in page.lower()


def test_dashboard_links_competitions_without_promising_a_leaderboard(client, auth):
    auth.register()
    html = client.get("/").get_data(as_text=True)
    assert 'href="/competitions"' in html  # the main navigation
    assert "leaderboard" not in text_of(html).lower()


def test_wallet_shows_competition_figures_and_no_deployer_text_to_traders(client, auth):
    auth.register()
    page = text_of(client.get("/wallet").get_data(as_text=True))
    assert "0.00 entry fees" in page and "0.00 won" in page
    assert "Demo mode: deposits are credited at once and no card is charged." in page
    assert "Stripe keys" not in page and "STRIPE_SECRET_KEY" not in page


def test_admins_see_how_to_turn_on_card_payments(app, client, auth):
    with app.app_context():
        make_admin("boss@example.com")
        db.session.remove()
    auth.login("boss@example.com", PASSWORD)
    page = text_of(client.get("/wallet").get_data(as_text=True))
    assert "set STRIPE_SECRET_KEY, STRIPE_PUBLISHABLE_KEY and STRIPE_WEBHOOK_SECRET" in page
