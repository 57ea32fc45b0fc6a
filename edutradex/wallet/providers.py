"""Payment providers behind one interface: Stripe (real keys, or localstripe in tests)
and the demo provider of the embedded default (no real money; credits and pays at once).

Stripe deposits: a PaymentIntent is created on the server; the browser turns the card into
a token with Stripe.js; the server attaches it to the user's Stripe customer and confirms
the intent. Credits are granted only by the signed ``payment_intent.succeeded`` webhook.

Stripe payouts: ``stripe.payouts.create`` moves money from the platform's Stripe balance to
the platform's bank account. Paying a user's own IBAN needs Stripe Connect (a connected
account per user) or a bank-transfer provider; PayoutProvider is the seam for that."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

import stripe
from flask import current_app

from ..errors import DomainError

log = logging.getLogger(__name__)


class PaymentDeclined(DomainError):
    status_code = 402


class ProviderUnavailable(DomainError):
    status_code = 503


class WebhookRejected(DomainError):
    status_code = 400


@dataclass(frozen=True)
class CardPaymentResult:
    status: str  # "succeeded" | "processing" | "requires_action"
    client_secret: str | None = None


@dataclass(frozen=True)
class PayoutResult:
    reference: str
    status: str  # "paid" | "pending" | "failed"
    failure_message: str | None = None


class PayoutProvider(Protocol):
    name: str

    def create_payout(self, withdrawal_id: int, amount: Decimal, currency: str, user_id: int) -> PayoutResult: ...


def to_cents(amount: Decimal) -> int:
    cents = amount * 100
    if cents != cents.to_integral_value():
        raise ValueError(f"{amount} is not a whole number of cents")
    return int(cents)


def stripe_enabled() -> bool:
    """Stripe when its key is set, unless the demo provider was chosen on purpose."""
    if current_app.config.get("PAYMENTS_PROVIDER") == "demo":
        return False
    return bool(current_app.config.get("STRIPE_SECRET_KEY"))


@contextmanager
def _stripe_errors(action: str):
    """Translate Stripe's exceptions into messages a person can act on."""
    try:
        yield
    except stripe.CardError as exc:
        raise PaymentDeclined(exc.user_message or "Your card was declined.") from exc
    except stripe.InvalidRequestError as exc:
        log.warning("Stripe refused to %s: %s", action, exc)
        raise DomainError(f"The payment service refused to {action}: {exc.user_message or 'invalid request'}.") from exc
    except stripe.StripeError as exc:
        log.error("Stripe error trying to %s: %s", action, exc)
        raise ProviderUnavailable("The payment service is not reachable right now. Try again in a minute.") from exc


class StripeGateway:
    name = "stripe"

    def __init__(self):
        config = current_app.config
        base = {"api": config["STRIPE_API_BASE"]} if config.get("STRIPE_API_BASE") else None
        self.client = stripe.StripeClient(config["STRIPE_SECRET_KEY"], base_addresses=base, max_network_retries=2)
        self.webhook_secret = config.get("STRIPE_WEBHOOK_SECRET")

    def create_customer(self, user_id: int, email: str) -> str:
        with _stripe_errors("create your payment profile"):
            customer = self.client.v1.customers.create(
                params={"email": email, "metadata": {"user_id": str(user_id)}},
                options={"idempotency_key": f"customer-{user_id}"},
            )
        return customer.id

    def create_payment_intent(self, deposit_id: int, user_id: int, customer_id: str, amount: Decimal) -> tuple[str, str]:
        with _stripe_errors("start the payment"):
            intent = self.client.v1.payment_intents.create(
                params={
                    "amount": to_cents(amount),
                    "currency": "eur",
                    "customer": customer_id,
                    "payment_method_types": ["card"],
                    "metadata": {"user_id": str(user_id), "deposit_id": str(deposit_id)},
                },
                options={"idempotency_key": f"deposit-{deposit_id}-intent"},
            )
        return intent.id, intent.client_secret

    def pay_with_card_token(self, intent_id: str, customer_id: str, token: str) -> CardPaymentResult:
        with _stripe_errors("take the card"):
            card = self.client.v1.customers.payment_sources.create(customer_id, params={"source": token})
            self.client.v1.payment_intents.update(intent_id, params={"payment_method": card.id})
            intent = self.client.v1.payment_intents.confirm(intent_id)
        if intent.status == "requires_action":
            return CardPaymentResult("requires_action", intent.client_secret)
        if intent.status in ("succeeded", "processing"):
            return CardPaymentResult(intent.status)
        error = intent.to_dict().get("last_payment_error") or {}
        raise PaymentDeclined(error.get("message") or "The payment was not completed.")

    def create_payout(self, withdrawal_id: int, amount: Decimal, currency: str, user_id: int) -> PayoutResult:
        try:
            payout = self.client.v1.payouts.create(
                params={
                    "amount": to_cents(amount),
                    "currency": currency,
                    "description": f"EduTradeX withdrawal {withdrawal_id}",
                    "metadata": {"withdrawal_id": str(withdrawal_id), "user_id": str(user_id)},
                },
                options={"idempotency_key": f"withdrawal-{withdrawal_id}-payout"},
            )
        except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as exc:
            # The payout may or may not exist: keep the withdrawal approved and let the job
            # be retried; the idempotency key makes the retry return the same payout.
            raise ProviderUnavailable(f"Stripe is not reachable: {exc}") from exc
        except stripe.StripeError as exc:
            return PayoutResult(reference="", status="failed", failure_message=exc.user_message or str(exc))
        status = {"paid": "paid", "failed": "failed", "canceled": "failed"}.get(payout.status, "pending")
        return PayoutResult(payout.id, status, payout.to_dict().get("failure_message"))

    def construct_event(self, payload: bytes, signature: str | None):
        if not self.webhook_secret:
            raise WebhookRejected("Webhooks are not configured (STRIPE_WEBHOOK_SECRET).")
        try:
            return stripe.Webhook.construct_event(payload, signature or "", self.webhook_secret)
        except (ValueError, stripe.SignatureVerificationError) as exc:
            raise WebhookRejected("Invalid webhook signature or payload.") from exc


class DemoPayouts:
    """The embedded default's educational mode: the payout is 'paid' at once."""

    name = "demo"

    def create_payout(self, withdrawal_id: int, amount: Decimal, currency: str, user_id: int) -> PayoutResult:
        log.info("demo payout of %s %s for withdrawal %s", amount, currency, withdrawal_id)
        return PayoutResult(reference=f"demo-po-{withdrawal_id}", status="paid")


def stripe_gateway() -> StripeGateway:
    return StripeGateway()


def payout_provider() -> PayoutProvider:
    """A provider registered by the app (another payout partner) wins over the default."""
    registered = current_app.extensions.get("wallet_payout_provider")
    if registered is not None:
        return registered
    return StripeGateway() if stripe_enabled() else DemoPayouts()
