"""Stripe webhooks: verify the signature, record the event id, apply it — all in one
transaction, so a replayed event (same id) changes nothing and a failed one is retried
by Stripe."""

from __future__ import annotations

import logging

from ..extensions import db
from .deposits import intent_failed, intent_succeeded
from .ledger import dialect_insert
from .models import StripeEvent
from .notify import commit
from .providers import stripe_gateway

log = logging.getLogger(__name__)

HANDLERS = {
    "payment_intent.succeeded": intent_succeeded,
    "payment_intent.payment_failed": intent_failed,
}


def handle_stripe_webhook(payload: bytes, signature: str | None) -> str:
    """Returns "processed", "duplicate" or "ignored". Raises WebhookRejected (400) for a
    bad signature or payload; then nothing is recorded."""
    event = stripe_gateway().construct_event(payload, signature)
    handler = HANDLERS.get(event["type"])
    if handler is None:
        return "ignored"  # no effect, so nothing to remember
    table = StripeEvent.__table__
    recorded = db.session.execute(
        dialect_insert(table).values(event_id=event["id"], event_type=event["type"])
        .on_conflict_do_nothing(index_elements=["event_id"]).returning(table.c.id)
    ).scalar_one_or_none()
    if recorded is None:
        db.session.rollback()
        log.info("Stripe event %s replayed: nothing to do", event["id"])
        return "duplicate"
    handler(event["data"]["object"].to_dict())  # a plain dict: handlers read it with .get
    commit()
    return "processed"
