"""Card deposits against localstripe: the PaymentIntent is created by the server, the card
token comes from (fake) Stripe.js, and credits arrive only through the signed webhook."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from decimal import Decimal

import requests

from edutradex.auth.models import User
from edutradex.extensions import db
from edutradex.wallet.ledger import get_or_create_wallet
from edutradex.wallet.models import Deposit, LedgerEntry, StripeEvent
from tests.support.smtp import text_body
from tests.support.web import AuthActions
from tests.wallet.conftest import WEBHOOK_SECRET
from tests.wallet.helpers import assert_books_balance, balance


def sign(payload: bytes, secret: str = WEBHOOK_SECRET) -> str:
    timestamp = int(time.time())
    signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={signature}"


def wait_until(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def sign_up(auth, email="card@example.com") -> int:
    auth.register(email=email)  # registering signs the user in
    return db.session.scalar(db.select(User.id).where(User.email == email))


def start(client, auth, amount="50.00"):
    response = client.post("/wallet/deposits", data={"amount": amount}, headers=auth.htmx_headers("/wallet"))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert 'data-stripe-checkout' in response.get_data(as_text=True)
    return db.session.scalar(db.select(Deposit).order_by(Deposit.id.desc()))


def pay(client, auth, deposit_id: int, token: str):
    headers = {"X-CSRFToken": auth.htmx_headers("/wallet")["X-CSRFToken"], "Accept": "application/json"}
    return client.post(f"/wallet/deposits/{deposit_id}/pay", json={"token": token}, headers=headers)


def deposit_status(deposit_id: int) -> str:
    db.session.expire_all()
    return db.session.get(Deposit, deposit_id).status


def completed_deposit(stripe_app, client, auth, localstripe, amount="50.00") -> tuple[int, Deposit]:
    user_id = sign_up(auth)
    deposit = start(client, auth, amount)
    assert pay(client, auth, deposit.id, localstripe.card_token()).get_json()["status"] == "succeeded"
    wait_until(lambda: deposit_status(deposit.id) == "completed")
    return user_id, deposit


def test_card_deposit_is_credited_once_by_the_signed_webhook(stripe_app, localstripe, smtp_server):
    client = stripe_app.test_client()
    auth = AuthActions(client)
    with stripe_app.app_context():
        user_id = sign_up(auth)
        deposit = start(client, auth, "50.00")
        intent = localstripe.client().v1.payment_intents.retrieve(deposit.provider_ref)
        assert (intent.amount, intent.currency) == (5000, "eur")
        assert intent.metadata.to_dict() == {"user_id": str(user_id), "deposit_id": str(deposit.id)}

        reply = pay(client, auth, deposit.id, localstripe.card_token())
        assert reply.status_code == 200 and reply.get_json()["status"] == "succeeded"
        # The card was charged, but credits come only from the webhook (about 1 s later).
        assert deposit_status(deposit.id) == "processing" and balance(user_id) == Decimal("0.00")
        page = client.get(f"/wallet/deposits/{deposit.id}").get_data(as_text=True)
        assert 'data-status="processing"' in page and "every 2s" in page  # the page keeps polling

        wait_until(lambda: deposit_status(deposit.id) == "completed")
        assert balance(user_id) == Decimal("50.00")
        assert get_or_create_wallet(user_id).withdrawable_balance == Decimal("50.00")  # paid money can be paid out
        page = client.get(f"/wallet/deposits/{deposit.id}").get_data(as_text=True)
        assert 'data-status="completed"' in page and "every 2s" not in page
        entries = db.session.scalars(db.select(LedgerEntry).where(LedgerEntry.entry_type == "deposit")).all()
        assert len(entries) == 1 and entries[0].idempotency_key == f"deposit:{deposit.id}"
        assert db.session.scalar(db.select(StripeEvent.event_type)) == "payment_intent.succeeded"
        messages = smtp_server.wait_for(1)
        assert [str(m["Subject"]) for m in messages] == ["[EduTradeX] Deposit received"]
        assert messages[0]["To"] == "card@example.com" and "50.00 credits" in text_body(messages[0])
    assert_books_balance(stripe_app)


def test_a_replayed_event_credits_nothing(stripe_app, localstripe):
    client = stripe_app.test_client()
    auth = AuthActions(client)
    with stripe_app.app_context():
        user_id, deposit = completed_deposit(stripe_app, client, auth, localstripe, "20.00")
        events = localstripe.client().v1.events.list(params={"type": "payment_intent.succeeded"})
        event = next(e for e in events.data if e.data.object.id == deposit.provider_ref)
        payload = json.dumps(event.to_dict()).encode()
        url = stripe_app.extensions["test_server"].url + "/wallet/webhooks/stripe"

        replay = requests.post(url, data=payload, headers={"Stripe-Signature": sign(payload)}, timeout=5)
        assert replay.status_code == 200 and replay.json()["outcome"] == "duplicate"
        # A different event id for the same payment (Stripe may send both) also changes nothing.
        again = json.loads(payload)
        again["id"] = event.id + "x"
        again = json.dumps(again).encode()
        second = requests.post(url, data=again, headers={"Stripe-Signature": sign(again)}, timeout=5)
        assert second.status_code == 200 and second.json()["outcome"] == "processed"

        assert balance(user_id) == Decimal("20.00")
        assert db.session.scalar(db.select(db.func.count()).select_from(LedgerEntry)) == 1
    assert_books_balance(stripe_app)


def test_a_bad_signature_is_refused_and_changes_nothing(stripe_app, localstripe):
    client = stripe_app.test_client()
    auth = AuthActions(client)
    with stripe_app.app_context():
        user_id = sign_up(auth)
        deposit = start(client, auth, "75.00")
        # A forged "succeeded" event for a real, unpaid deposit: it would credit 75 if the
        # signature were not checked.
        forged = json.dumps({
            "id": "evt_forged", "object": "event", "type": "payment_intent.succeeded", "api_version": "2017-08-15",
            "created": int(time.time()),
            "data": {"object": {"id": deposit.provider_ref, "object": "payment_intent", "amount": 7500,
                                "currency": "eur", "status": "succeeded", "metadata": {}}},
        }).encode()
        url = stripe_app.extensions["test_server"].url + "/wallet/webhooks/stripe"
        for headers in ({"Stripe-Signature": sign(forged, "whsec_wrong")}, {}, {"Stripe-Signature": "t=1,v1=00"}):
            response = requests.post(url, data=forged, headers=headers, timeout=5)
            assert response.status_code == 400
            assert "signature" in response.json()["error"]
        assert deposit_status(deposit.id) == "pending" and balance(user_id) == Decimal("0.00")
        assert db.session.scalar(db.select(db.func.count()).select_from(StripeEvent)) == 0
    assert_books_balance(stripe_app)


def test_declined_cards_credit_nothing_and_say_why(stripe_app, localstripe):
    client = stripe_app.test_client()
    auth = AuthActions(client)
    with stripe_app.app_context():
        user_id = sign_up(auth)
        # 4000000000000002: declined as soon as Stripe sees it (on attaching it).
        first = start(client, auth, "30.00")
        reply = pay(client, auth, first.id, localstripe.card_token("4000000000000002"))
        assert reply.status_code == 402 and reply.get_json()["error"] == "Your card was declined."
        # 4000000000000341: attaches fine, the charge is declined.
        second = start(client, auth, "30.00")
        reply = pay(client, auth, second.id, localstripe.card_token("4000000000000341"))
        assert reply.status_code == 402 and reply.get_json()["error"] == "Your card was declined."
        # localstripe also sends payment_intent.payment_failed for the second one.
        wait_until(lambda: db.session.scalar(db.select(db.func.count()).select_from(StripeEvent)
                                             .where(StripeEvent.event_type == "payment_intent.payment_failed")))
        for made in (first, second):
            assert deposit_status(made.id) == "failed"
            assert db.session.get(Deposit, made.id).failure_message == "Your card was declined."
        assert "Your card was declined." in client.get("/wallet").get_data(as_text=True)
        retry = pay(client, auth, second.id, localstripe.card_token())
        assert retry.status_code == 409  # a failed deposit is not paid later; start a new one
        assert balance(user_id) == Decimal("0.00")
        assert db.session.scalar(db.select(db.func.count()).select_from(LedgerEntry)) == 0
    assert_books_balance(stripe_app)


def test_someone_elses_deposit_does_not_exist_for_you(stripe_app, localstripe):
    client = stripe_app.test_client()
    auth = AuthActions(client)
    with stripe_app.app_context():
        sign_up(auth, "owner@example.com")
        deposit = start(client, auth, "40.00")
        auth.logout()
        sign_up(auth, "other@example.com")
        assert client.get(f"/wallet/deposits/{deposit.id}").status_code == 404
        reply = pay(client, auth, deposit.id, localstripe.card_token())
        assert reply.status_code == 404
        assert deposit_status(deposit.id) == "pending"
    assert_books_balance(stripe_app)
