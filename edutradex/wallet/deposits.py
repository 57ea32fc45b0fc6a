"""Deposits: EUR in, credits out (1:1). With Stripe, credits come only from the signed
``payment_intent.succeeded`` webhook; the demo provider credits at once."""

from __future__ import annotations

import logging
from decimal import Decimal

from flask import current_app
from sqlalchemy import select, update

from ..auth.models import User
from ..errors import Conflict, DomainError, NotFound, found
from ..extensions import db
from ..types import utcnow
from .ledger import get_or_create_wallet, post_ledger_entry, wallet_account
from .models import Deposit, DepositStatus, EntryType, Wallet
from .notify import after_commit, commit, email_user, live_update
from .providers import CardPaymentResult, PaymentDeclined, stripe_enabled, stripe_gateway, to_cents
from .status import transition

log = logging.getLogger(__name__)


def deposit_limits() -> tuple[Decimal, Decimal]:
    return Decimal(current_app.config["DEPOSIT_MIN"]), Decimal(current_app.config["DEPOSIT_MAX"])


def _check_limits(amount: Decimal) -> None:
    low, high = deposit_limits()
    if amount < low:
        raise DomainError(f"The minimum deposit is {low:.2f} credits.")
    if amount > high:
        raise DomainError(f"The maximum deposit is {high:.2f} credits.")


def get_user_deposit(user_id: int, deposit_id: int) -> Deposit:
    deposit = db.session.get(Deposit, deposit_id)
    if deposit is None or deposit.user_id != user_id:
        raise NotFound("No such deposit.")  # someone else's deposit does not exist for you
    return deposit


def recent_deposits(user_id: int, limit: int = 5) -> list[Deposit]:
    return list(db.session.scalars(select(Deposit).where(Deposit.user_id == user_id)
                                   .order_by(Deposit.id.desc()).limit(limit)))


def start_deposit(user_id: int, amount: Decimal) -> Deposit:
    """Create the deposit. Demo: completed at once. Stripe: a PaymentIntent waiting for
    the card (the deposit keeps its id and client secret)."""
    _check_limits(amount)
    user = found(db.session.get(User, user_id), "No such user.")
    if not stripe_enabled():
        deposit = Deposit(user_id=user_id, amount=amount, provider="demo", status=DepositStatus.PROCESSING.value)
        db.session.add(deposit)
        db.session.flush()
        deposit.provider_ref = f"demo-{deposit.id}"
        _complete(deposit)
        commit()
        return deposit

    gateway = stripe_gateway()
    customer_id, email = get_or_create_wallet(user_id).stripe_customer_id, user.email
    commit()  # no transaction stays open while Stripe is called
    if not customer_id:
        # The customer's idempotency key is the user's id: two first deposits at once
        # get the same customer back.
        customer_id = gateway.create_customer(user_id, email)
        db.session.execute(update(Wallet).where(Wallet.user_id == user_id).values(stripe_customer_id=customer_id))
    deposit = Deposit(user_id=user_id, amount=amount, provider="stripe", status=DepositStatus.PENDING.value)
    db.session.add(deposit)
    commit()  # the deposit's id goes into the PaymentIntent's metadata
    try:
        deposit.provider_ref, deposit.client_secret = gateway.create_payment_intent(deposit.id, user_id, customer_id, amount)
    except DomainError as exc:
        transition(Deposit, deposit.id, [DepositStatus.PENDING], DepositStatus.FAILED, failure_message=exc.message[:255])
        commit()
        raise
    commit()
    return deposit


def pay_deposit(user_id: int, deposit_id: int, card_token: str) -> CardPaymentResult:
    """Charge the card Stripe.js tokenised. A decline fails the deposit with Stripe's
    message; success only marks it processing: the webhook grants the credits."""
    deposit = get_user_deposit(user_id, deposit_id)
    if deposit.provider != "stripe":
        raise Conflict("This deposit does not take card payments.")
    if deposit.status != DepositStatus.PENDING.value:
        raise Conflict(f"This deposit is already {deposit.status}.")
    if not card_token or not card_token.startswith("tok_") or len(card_token) > 100:
        raise DomainError("The card details did not arrive. Enter them again.")
    intent_id, customer_id = deposit.provider_ref, get_or_create_wallet(user_id).stripe_customer_id
    commit()  # no transaction stays open while Stripe is called
    try:
        result = stripe_gateway().pay_with_card_token(intent_id, customer_id, card_token)
    except PaymentDeclined as exc:
        mark_deposit_failed(deposit_id, exc.message)
        commit()
        raise
    if result.status != "requires_action":
        # The webhook may have completed the deposit already: only pending moves on.
        transition(Deposit, deposit_id, [DepositStatus.PENDING], DepositStatus.PROCESSING)
    commit()
    return result


def _complete(deposit: Deposit) -> None:
    """Credit the wallet once per deposit, whatever calls this and however often: the
    conditional status change decides which caller posts the entry."""
    if not transition(Deposit, deposit.id, [DepositStatus.PENDING, DepositStatus.PROCESSING], DepositStatus.COMPLETED,
                      failure_message=None, completed_at=utcnow()):
        return
    entries = post_ledger_entry(
        EntryType.DEPOSIT, deposit.amount, debit=None, credit=wallet_account(deposit.user_id),
        idempotency_key=f"deposit:{deposit.id}", reference=f"deposit:{deposit.id}",
        withdrawable=deposit.provider != "demo",  # demo credits are never paid out
    )
    user = db.session.get(User, deposit.user_id)
    # Plain values: after the commit, ORM objects are expired and must not be reloaded.
    user_id, email, name = user.id, user.email, user.name
    balance, amount, deposit_id, demo = entries[0].balance_after, deposit.amount, deposit.id, deposit.provider == "demo"

    def notify() -> None:
        # A demo deposit is confirmed on the page that made it; a card deposit arrives later.
        live_update(user_id, balance, None if demo else f"Deposit of {amount:.2f} credits received.")
        email_user(email, "Deposit received", "deposit_received", f"deposit-{deposit_id}-received",
                   name=name, amount=amount, balance=balance, deposit_id=deposit_id, demo=demo)

    after_commit(notify)


def mark_deposit_failed(deposit_id: int, message: str) -> None:
    if not transition(Deposit, deposit_id, [DepositStatus.PENDING, DepositStatus.PROCESSING], DepositStatus.FAILED,
                      failure_message=message[:255]):
        return
    user_id = db.session.get(Deposit, deposit_id).user_id
    after_commit(lambda: live_update(user_id, None, f"Deposit failed: {message}", "error"))


def intent_succeeded(intent) -> None:
    """``payment_intent.succeeded``: credit the deposit it belongs to (in the caller's
    transaction, which also records the event)."""
    deposit = _deposit_for_intent(intent)
    if deposit is None:
        return
    if intent["currency"] != deposit.currency or intent["amount"] != to_cents(deposit.amount):
        log.error("PaymentIntent %s paid %s %s but deposit %s expects %s: not credited",
                  intent["id"], intent["amount"], intent["currency"], deposit.id, deposit.amount)
        mark_deposit_failed(deposit.id, "The amount paid does not match the deposit. Contact support.")
        return
    _complete(deposit)


def intent_failed(intent) -> None:
    deposit = _deposit_for_intent(intent)
    if deposit is None:
        return
    error = intent.get("last_payment_error") or {}
    mark_deposit_failed(deposit.id, error.get("message") or "The payment failed.")


def _deposit_for_intent(intent) -> Deposit | None:
    deposit = db.session.scalar(select(Deposit).where(Deposit.provider_ref == intent["id"]))
    if deposit is None:
        log.warning("webhook for unknown PaymentIntent %s (metadata %s) ignored", intent["id"], dict(intent.get("metadata") or {}))
    return deposit
