"""The wallet page and its forms over HTTP: bad input gets a clear 4xx and changes nothing."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal

import pytest

from edutradex.auth.models import User
from edutradex.extensions import db
from edutradex.wallet.models import BankAccount, Deposit, KycSubmission, Withdrawal
from edutradex.wallet.service import adjust_credits
from tests.factories import make_admin
from tests.support.web import csrf_token
from tests.wallet.helpers import assert_books_balance, balance, verified_user_with_bank


def user_id(email="joe@example.com") -> int:
    return db.session.scalar(db.select(User.id).where(User.email == email))


def htmx_post(client, auth, path, data):
    return client.post(path, data=data, headers=auth.htmx_headers("/wallet"))


def test_the_wallet_page_needs_an_account(client):
    response = client.get("/wallet")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_new_user_sees_empty_states_and_the_demo_label(client, auth):
    auth.register()
    page = client.get("/wallet").get_data(as_text=True)
    assert 'href="/wallet"' in page  # in the navigation
    assert "Demo payments · no real money" in page
    assert "No transactions yet" in page and "No deposits yet" in page and "No withdrawals yet" in page
    assert "Verify your identity first." in page and "Add your bank account first." in page
    assert "js.stripe.com" not in page  # no third-party script in demo mode


def test_demo_deposit_updates_balance_history_and_panels(app, client, auth):
    auth.register()
    response = htmx_post(client, auth, "/wallet/deposits", {"amount": "25.50"})
    assert response.status_code == 200
    assert "wallet-changed" in response.headers["HX-Trigger"]
    assert "25.50" in response.get_data(as_text=True)
    summary = client.get("/wallet/summary").get_data(as_text=True)
    assert "25.50" in summary
    history = client.get("/wallet/history", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Deposit" in history and "+25.50" in history
    with app.app_context():
        assert balance(user_id()) == Decimal("25.50")
    assert_books_balance(app)


BAD_AMOUNTS = {
    "": "Amount: enter a number",
    "abc": "enter a number",
    "-5": "must be more than 0",
    "0": "must be more than 0",
    "0.00": "must be more than 0",
    "NaN": "enter a number",
    "Infinity": "enter a number",
    "1e309": "enter a number",
    "10.001": "2 decimal places",
    "99999999999": "must be at most 1000000000",
    "1,000": "enter a number",
    "4.99": "minimum deposit is 5.00",
    "1000.01": "maximum deposit is 1000.00",
}


@pytest.mark.parametrize("amount", BAD_AMOUNTS)
def test_bad_deposit_amounts_are_refused_clearly(app, client, auth, amount):
    auth.register()
    response = htmx_post(client, auth, "/wallet/deposits", {"amount": amount})
    assert response.status_code == 400
    assert BAD_AMOUNTS[amount] in response.get_data(as_text=True)
    assert response.headers["HX-Retarget"] == "#toasts"
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Deposit)) == 0
    assert_books_balance(app)


def verified_funded(app, auth, amount="100.00"):
    auth.register()
    with app.app_context():
        admin = make_admin()
        adjust_credits(user_id(), Decimal(amount), "Test funds", admin.id)
        verified_user_with_bank(user_id(), admin.id)


@pytest.mark.parametrize("amount, status, message", [
    ("-1", 400, "must be more than 0"), ("0", 400, "must be more than 0"), ("NaN", 400, "enter a number"),
    ("5.555", 400, "2 decimal places"), ("1e400", 400, "enter a number"), ("9.99", 400, "minimum withdrawal"),
    ("100.01", 400, "more than your balance"),
])
def test_bad_withdrawal_amounts_change_nothing(app, client, auth, amount, status, message):
    verified_funded(app, auth)
    response = htmx_post(client, auth, "/wallet/withdrawals", {"amount": amount})
    assert response.status_code == status and message in response.get_data(as_text=True)
    with app.app_context():
        assert balance(user_id()) == Decimal("100.00")
        assert db.session.scalar(db.select(db.func.count()).select_from(Withdrawal)) == 0
    assert_books_balance(app)


def test_demo_credits_are_never_withdrawable(app, client, auth):
    verified_funded(app, auth, "20.00")
    assert htmx_post(client, auth, "/wallet/deposits", {"amount": "100"}).status_code == 200  # the demo provider
    assert "Withdrawable: 20.00 credits" in client.get("/wallet").get_data(as_text=True)
    response = htmx_post(client, auth, "/wallet/withdrawals", {"amount": "50"})
    text = response.get_data(as_text=True)
    assert response.status_code == 400 and "at most 20.00 credits" in text and "demo payment provider" in text
    with app.app_context():
        assert balance(user_id()) == Decimal("120.00")
        assert db.session.scalar(db.select(db.func.count()).select_from(Withdrawal)) == 0
    assert htmx_post(client, auth, "/wallet/withdrawals", {"amount": "20"}).status_code == 200
    with app.app_context():
        assert balance(user_id()) == Decimal("100.00")
    assert "Withdrawable: 0.00 credits" in client.get("/wallet").get_data(as_text=True)
    assert_books_balance(app)


def test_withdraw_and_cancel_through_the_page(app, client, auth):
    verified_funded(app, auth)
    response = htmx_post(client, auth, "/wallet/withdrawals", {"amount": "40"})
    assert response.status_code == 200 and "requested" in response.get_data(as_text=True)
    assert "DE89 **** **** **** 3000" in client.get("/wallet").get_data(as_text=True)
    with app.app_context():
        withdrawal_id = db.session.scalar(db.select(Withdrawal.id))
        assert balance(user_id()) == Decimal("60.00")
    response = htmx_post(client, auth, f"/wallet/withdrawals/{withdrawal_id}/cancel", {})
    assert response.status_code == 200
    with app.app_context():
        assert balance(user_id()) == Decimal("100.00")
    assert_books_balance(app)


def test_someone_elses_withdrawal_cannot_be_touched(app, client, auth):
    verified_funded(app, auth)
    htmx_post(client, auth, "/wallet/withdrawals", {"amount": "40"})
    with app.app_context():
        withdrawal_id = db.session.scalar(db.select(Withdrawal.id))
    auth.logout()
    auth.register(email="mallory@example.com")
    response = htmx_post(client, auth, f"/wallet/withdrawals/{withdrawal_id}/cancel", {})
    assert response.status_code == 404
    assert "**** 3000" not in client.get("/wallet").get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Withdrawal, withdrawal_id).status == "requested"
        assert balance(user_id()) == Decimal("60.00")
    assert_books_balance(app)


@pytest.mark.parametrize("iban, message", [
    ("DE89370400440532013001", "check digits are wrong"),
    ("DE8937040044053201300", "has 22 characters"),
    ("XX89370400440532013000", "not supported"),
    ("hello", "starts with a country code"),
    ("", "Enter your IBAN"),
])
def test_bad_ibans_are_refused(app, client, auth, iban, message):
    auth.register()
    response = htmx_post(client, auth, "/wallet/bank-account", {"iban": iban, "holder": "Joe Trader"})
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(BankAccount)) == 0


def inline_errors(html: str) -> dict[str, str]:
    """Field id -> the message shown under it, for fields marked aria-invalid."""
    html = html.replace("&#39;", "'")
    shown = dict(re.findall(r'<p class="error" id="([a-z-]+)-error"[^>]*>([^<]*)</p>', html))
    for field_id in shown:
        assert re.search(rf'id="{field_id}"[^>]*aria-invalid="true" aria-describedby="{field_id}-error"', html, re.S)
    return shown


def test_a_bad_iban_is_shown_under_its_field_with_what_was_typed(app, client, auth):
    auth.register()
    response = htmx_post(client, auth, "/wallet/bank-account", {"iban": "DE89370400440532013001", "holder": "Joe Trader"})
    assert response.status_code == 400 and "HX-Retarget" not in response.headers  # the form itself, not a toast
    html = response.get_data(as_text=True)
    assert inline_errors(html) == {"bank-iban": "This IBAN's check digits are wrong: check it for typing mistakes."}
    assert 'value="DE89370400440532013001"' in html and 'value="Joe Trader"' in html
    assert 'id="bank-holder"' in html and 'aria-invalid="false"' in html


def test_bank_details_are_encrypted_and_shown_masked(app, client, auth):
    auth.register()
    response = htmx_post(client, auth, "/wallet/bank-account", {"iban": "de89 3704 0044 0532 0130 00", "holder": "Joe Trader"})
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "DE89 **** **** **** 3000" in body and "Joe Trader" in body and "370400440532" not in body
    with app.app_context():
        raw = db.session.execute(db.text("SELECT iban_encrypted, holder_encrypted FROM bank_accounts")).one()
        assert "DE89" not in raw[0] and "Joe" not in raw[1]


def test_posts_without_the_csrf_token_are_refused(app, client, auth):
    auth.register()
    assert client.post("/wallet/deposits", data={"amount": "50"}).status_code == 400
    assert client.post("/wallet/kyc", data={"legal_name": "Joe"}).status_code == 400
    assert client.post("/wallet/deposits/1/pay", json={"token": "tok_x"}).status_code == 400
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Deposit)) == 0


def test_kyc_form_stores_encrypted_details_and_shows_the_status(app, client, auth):
    auth.register()
    form = {"legal_name": "Joe Q. Trader", "date_of_birth": "1988-02-29", "country": "NL",
            "address": "Damrak 1, 1012 LG Amsterdam", "id_number": "NX1234567"}
    under_age = dict(form, date_of_birth="2015-01-01")
    response = htmx_post(client, auth, "/wallet/kyc", under_age)
    assert response.status_code == 400 and "at least 18" in response.get_data(as_text=True)
    response = htmx_post(client, auth, "/wallet/kyc", form)
    assert response.status_code == 200 and "Under review" in response.get_data(as_text=True)
    assert htmx_post(client, auth, "/wallet/kyc", form).status_code == 409
    with app.app_context():
        raw = db.session.execute(db.text("SELECT data_encrypted FROM kyc_submissions")).scalar_one()
        assert "Trader" not in raw and "NX1234567" not in raw and "Damrak" not in raw
        assert db.session.scalar(db.select(KycSubmission.status)) == "pending"


def test_every_wrong_kyc_field_is_shown_under_it_at_once(app, client, auth):
    auth.register()
    form = {"legal_name": "J", "date_of_birth": "2015-01-01", "country": "ZZ", "address": "Damrak 1, Amsterdam",
            "id_number": "!!"}
    response = htmx_post(client, auth, "/wallet/kyc", form)
    assert response.status_code == 400 and "HX-Retarget" not in response.headers
    html = response.get_data(as_text=True)
    assert inline_errors(html) == {
        "kyc-name": "Enter your full legal name as on your ID document.",
        "kyc-dob": "You must be at least 18 to withdraw money.",
        "kyc-country": "Choose your country of residence from the list.",
        "kyc-id": "Enter the ID document number: 5 to 40 letters and digits.",
    }
    assert re.search(r'id="kyc-address"[^>]*aria-invalid="false"', html, re.S)
    assert ">Damrak 1, Amsterdam</textarea>" in html and 'value="2015-01-01"' in html  # what was typed stays
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(KycSubmission)) == 0


def test_history_is_paginated_and_exports_csv(app, client, auth):
    auth.register()
    with app.app_context():
        admin = make_admin()
        for i in range(24):
            adjust_credits(user_id(), Decimal("1.00"), f"Bonus {i}", admin.id)
        adjust_credits(user_id(), Decimal("1.00"), "=HYPERLINK(\"http://evil\")", admin.id)
    first = client.get("/wallet").get_data(as_text=True)
    assert first.count("<tr>") == 21 and "Page 1 of 2" in first  # header + 20 rows
    second = client.get("/wallet/history?page=2", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert second.count("<tr>") == 6 and "Page 2 of 2" in second and "Bonus 0" in second
    for weird in ("abc", "-1", "0", "99999999999", "²", "9" * 30):
        assert client.get(f"/wallet/history?page={weird}", headers={"HX-Request": "true"}).status_code == 200
    export = client.get("/wallet/history.csv")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(export.get_data(as_text=True))))
    assert rows[0][:4] == ["id", "created_at_utc", "type", "amount"] and len(rows) == 26
    assert rows[1][2:6] == ["adjustment", "1.00", "0.00", "1.00"]
    assert rows[-1][7].startswith("'=")  # no formula injection into spreadsheets


def test_the_webhook_endpoint_is_off_without_stripe(client):
    assert client.post("/wallet/webhooks/stripe", data=b"{}").status_code == 404


@pytest.mark.parametrize("stripe_app", ["sqlite"], indirect=True)
def test_stripe_mode_loads_the_configured_stripe_js_and_allows_it_in_the_csp(stripe_app, localstripe):
    client = stripe_app.test_client()
    from tests.support.web import AuthActions

    AuthActions(client).register()
    response = client.get("/wallet")
    page = response.get_data(as_text=True)
    assert f'<script src="{localstripe.js_url}"></script>' in page
    assert "Card payments" in page and "Demo payments" not in page
    csp = response.headers["Content-Security-Policy"]
    for directive in ("script-src", "connect-src", "frame-src"):
        assert localstripe.proxy.url in next(part for part in csp.split("; ") if part.startswith(directive))
    assert csrf_token(client, "/wallet")


def test_balance_changes_are_pushed_live_to_the_owner_only(app, client, auth):
    from edutradex.extensions import socketio

    auth.register()
    owner = socketio.test_client(app, flask_test_client=client)
    other_client = app.test_client()
    from tests.support.web import AuthActions

    AuthActions(other_client).register(email="other@example.com")
    other = socketio.test_client(app, flask_test_client=other_client)
    with app.app_context():
        adjust_credits(user_id(), Decimal("12.00"), "Refund for outage", make_admin().id)
    received = owner.get_received()
    assert [m["args"][0] for m in received if m["name"] == "wallet"] == [{"balance": "12.00"}]
    assert "+12.00" in next(m["args"][0]["message"] for m in received if m["name"] == "notice")
    assert not [m for m in other.get_received() if m["name"] in ("wallet", "notice")]
