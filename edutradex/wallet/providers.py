"""Payment providers behind one interface: Stripe (real keys, or localstripe in tests)
and the demo provider of the embedded default (no real money; it credits deposits at once).

Stripe deposits: a PaymentIntent is created on the server; the browser turns the card into
a token with Stripe.js; the server attaches it to the user's Stripe customer and confirms
the intent. Credits are granted only by the signed ``payment_intent.succeeded`` webhook.

Payouts reach the user's own IBAN through SEPA credit-transfer batches (see batches.py):
the platform's bank pays them. (Stripe's ``payouts.create`` would only move the platform's
Stripe balance to the platform's own bank account, so it is not used.) A provider that pays
users through an API — Stripe Connect, with a connected account per user — plugs in as a
``PayoutProvider`` registered at ``app.extensions["wallet_payout_provider"]``: approved
withdrawals then go to it through the payout job (withdrawals.run_payout), with retries, and
its webhooks report the result through ``withdrawals.provider_reported``."""

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
    status: str  # "paid" | "pending" (its webhook will say) | "failed"
    failure_message: str | None = None


class PayoutProvider(Protocol):
    """A payout partner with an API. ``create_payout`` must be idempotent per withdrawal
    (the job is retried) and raise ProviderUnavailable when the outcome is unknown;
    ``payout_status`` says how a payout it answered "pending" for has ended."""

    name: str

    def create_payout(self, withdrawal_id: int, amount: Decimal, currency: str, user_id: int) -> PayoutResult: ...

    def payout_status(self, withdrawal_id: int, reference: str | None) -> PayoutResult: ...


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

    def construct_event(self, payload: bytes, signature: str | None):
        if not self.webhook_secret:
            raise WebhookRejected("Webhooks are not configured (STRIPE_WEBHOOK_SECRET).")
        try:
            return stripe.Webhook.construct_event(payload, signature or "", self.webhook_secret)
        except (ValueError, stripe.SignatureVerificationError) as exc:
            raise WebhookRejected("Invalid webhook signature or payload.") from exc


def stripe_gateway() -> StripeGateway:
    return StripeGateway()


def payout_provider() -> PayoutProvider | None:
    """The payout partner with an API the app registered, or None: withdrawals are then paid
    by SEPA batches an admin sends to the platform's bank."""
    return current_app.extensions.get("wallet_payout_provider")
