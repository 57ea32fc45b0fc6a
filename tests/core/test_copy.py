"""Honest copy: the landing page, dashboard and wallet promise only what this install has
(no competitions until that feature exists, live forex only with a data provider), and
deployer hints are for administrators."""

from __future__ import annotations

import re

from edutradex.extensions import db
from tests.factories import PASSWORD, make_admin


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_landing_page_promises_only_what_the_default_install_has(client):
    page = text_of(client.get("/").get_data(as_text=True))
    assert "Competition" not in page and "competition" not in page
    assert "live forex" not in page.lower() and "Forex from" not in page
    assert "simulated OTC currency pairs and volatility indices" in page


def test_landing_page_mentions_live_forex_once_a_provider_is_configured(app, client):
    app.config["TWELVEDATA_API_KEY"] = "key"
    page = text_of(client.get("/").get_data(as_text=True))
    assert "live forex" in page and "Competition" not in page


def test_dashboard_does_not_promise_competitions(client, auth):
    auth.register()
    page = text_of(client.get("/").get_data(as_text=True))
    assert "ompetition" not in page


def test_wallet_shows_no_competition_figures_and_no_deployer_text_to_traders(client, auth):
    auth.register()
    page = text_of(client.get("/wallet").get_data(as_text=True))
    assert "Competitions" not in page and "entry fees" not in page
    assert "Demo mode: deposits are credited at once and no card is charged." in page
    assert "Stripe keys" not in page and "STRIPE_SECRET_KEY" not in page


def test_admins_see_how_to_turn_on_card_payments(app, client, auth):
    with app.app_context():
        make_admin("boss@example.com")
        db.session.remove()
    auth.login("boss@example.com", PASSWORD)
    page = text_of(client.get("/wallet").get_data(as_text=True))
    assert "set STRIPE_SECRET_KEY, STRIPE_PUBLISHABLE_KEY and STRIPE_WEBHOOK_SECRET" in page
