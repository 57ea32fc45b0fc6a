"""A deposit in a real browser: the page loads localstripe's fake Stripe.js (STRIPE_JS_URL),
the card is typed into its card element, the server confirms the PaymentIntent, and the
credits appear once localstripe's signed webhook has arrived."""

from __future__ import annotations

import pytest

from tests.support.browser import sign_up

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def type_card(page, number: str) -> None:
    checkout = page.get_by_test_id("stripe-checkout")
    checkout.get_by_placeholder("number").fill(number)
    checkout.get_by_placeholder("exp_month").fill("12")
    checkout.get_by_placeholder("exp_year").fill("34")
    checkout.get_by_placeholder("cvc").fill("123")
    checkout.get_by_placeholder("postal_code").fill("75001")


@pytest.mark.parametrize("stripe_app", ["sqlite"], indirect=True)
def test_deposit_with_a_card_through_stripe_js(stripe_app, page):
    base = stripe_app.extensions["test_server"].url
    problems = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    sign_up(page, base, "Card Trader", "browser-card@example.com")

    page.goto(base + "/wallet")
    assert page.get_by_test_id("wallet-balance").inner_text() == "0.00"
    assert page.get_by_test_id("history-empty").is_visible()
    page.get_by_test_id("deposit-amount").fill("42")
    page.get_by_test_id("deposit-submit").click()
    type_card(page, "4242424242424242")
    page.get_by_test_id("pay-button").click()

    status = page.get_by_test_id("deposit-status")
    status.and_(page.locator('[data-status="completed"]')).wait_for(timeout=15000)
    assert "42.00 credits added" in status.inner_text()
    page.get_by_test_id("history-table").wait_for()
    assert page.get_by_test_id("wallet-balance").inner_text() == "42.00"

    # A declined card: a clear message, no credits.
    page.get_by_test_id("deposit-amount").fill("10")
    page.get_by_test_id("deposit-submit").click()
    type_card(page, "4000000000000341")
    page.get_by_test_id("pay-button").click()
    page.locator("[data-card-error]").get_by_text("Your card was declined.").wait_for()
    assert page.get_by_test_id("wallet-balance").inner_text() == "42.00"
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems

    from tests.wallet.helpers import assert_books_balance

    assert_books_balance(stripe_app)
