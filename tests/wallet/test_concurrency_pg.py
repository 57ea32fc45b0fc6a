"""Concurrency on a real PostgreSQL server: the conditional debit and the idempotency keys
hold when requests really race."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from decimal import Decimal

import pytest

from edutradex.extensions import db
from edutradex.wallet import deposits, withdrawals
from edutradex.wallet.ledger import InsufficientFunds
from edutradex.wallet.models import Deposit, LedgerEntry, StripeEvent
from edutradex.wallet.service import adjust_credits
from edutradex.wallet.webhooks import handle_stripe_webhook
from tests.conftest import build_app
from tests.factories import make_admin, make_user
from tests.support.concurrency import run_in_threads
from tests.wallet.conftest import WEBHOOK_SECRET
from tests.wallet.helpers import assert_books_balance, balance, verified_user_with_bank

pytestmark = pytest.mark.postgres


def test_parallel_withdrawals_only_spend_what_is_there(pg_app):
    with pg_app.app_context():
        admin, user = make_admin(), make_user()
        adjust_credits(user.id, Decimal("100.00"), "Test funds", admin.id)  # demo deposits are never withdrawable
        verified_user_with_bank(user.id, admin.id)
        user_id = user.id

    def withdraw(_):
        try:
            withdrawals.request_withdrawal(user_id, Decimal("30.00"))
            return "ok"
        except InsufficientFunds:
            return "refused"

    results = run_in_threads(pg_app, 12, withdraw)
    assert sorted(results) == ["ok"] * 3 + ["refused"] * 9
    with pg_app.app_context():
        assert balance(user_id) == Decimal("10.00")
        afters = db.session.scalars(db.select(LedgerEntry.balance_after)).all()
        assert min(afters) >= 0
        assert len(withdrawals.user_withdrawals(user_id)) == 3  # refused requests left no row
    assert_books_balance(pg_app)


def test_the_same_webhook_delivered_in_parallel_credits_once(postgres_url, tmp_path):
    app = build_app(postgres_url, STRIPE_SECRET_KEY="sk_test_x", STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
                    MAIL_OUTBOX_DIR=str(tmp_path / "outbox"))
    with app.app_context():
        user = make_user()
        deposit = Deposit(user_id=user.id, amount=Decimal("60.00"), provider="stripe", provider_ref="pi_race",
                          status="processing")
        db.session.add(deposit)
        db.session.commit()
        user_id, deposit_id = user.id, deposit.id

    def event(event_id: str) -> tuple[bytes, str]:
        payload = json.dumps({"id": event_id, "object": "event", "type": "payment_intent.succeeded",
                              "created": int(time.time()),
                              "data": {"object": {"id": "pi_race", "object": "payment_intent", "amount": 6000,
                                                  "currency": "eur", "metadata": {}}}}).encode()
        timestamp = int(time.time())
        signature = hmac.new(WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
        return payload, f"t={timestamp},v1={signature}"

    same = event("evt_same")
    # Half the threads deliver one event id; the other half each a different id for the
    # same payment: one credit in all.
    results = run_in_threads(app, 10, lambda i: handle_stripe_webhook(*(same if i % 2 else event(f"evt_{i}"))))
    assert results.count("processed") >= 1
    with app.app_context():
        assert balance(user_id) == Decimal("60.00")
        assert db.session.get(Deposit, deposit_id).status == "completed"
        assert db.session.scalar(db.select(db.func.count()).select_from(LedgerEntry)) == 1
        assert db.session.scalar(db.select(db.func.count()).select_from(StripeEvent)
                                 .where(StripeEvent.event_id == "evt_same")) == 1
    assert_books_balance(app)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_the_same_idempotency_key_posted_in_parallel_moves_money_once(pg_app):
    """Every thread passes the replay check before any commits; the unique key decides."""
    from edutradex.wallet.ledger import platform_account, post_ledger_entry, wallet_account
    from edutradex.wallet.models import EntryType, PlatformAccountKind

    with pg_app.app_context():
        user = make_user()
        deposits.start_deposit(user.id, Decimal("50.00"))
        user_id = user.id

    def enter(_):
        entries = post_ledger_entry(EntryType.COMPETITION_ENTRY, Decimal("20.00"), debit=wallet_account(user_id),
                                    credit=platform_account(PlatformAccountKind.PRIZE_POOL, "competition:9"),
                                    idempotency_key=f"competition:9:entry:{user_id}", reference="competition:9")
        db.session.commit()
        return ",".join(str(e.id) for e in entries)

    results = run_in_threads(pg_app, 8, enter)
    assert len(set(results)) == 1  # every caller got the same two entries back
    with pg_app.app_context():
        assert balance(user_id) == Decimal("30.00")
        assert db.session.scalar(db.select(db.func.count()).select_from(LedgerEntry)
                                 .where(LedgerEntry.entry_type == "competition_entry")) == 2
    assert_books_balance(pg_app)
