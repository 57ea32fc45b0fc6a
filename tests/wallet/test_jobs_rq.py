"""Payouts and their emails as RQ jobs (production mode), on a real Redis with a real
worker — started late, as after an outage: nothing approved is lost on the way."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from edutradex import jobs
from edutradex.extensions import db
from edutradex.wallet import batches, deposits, withdrawals
from edutradex.wallet.models import Withdrawal
from edutradex.wallet.service import adjust_credits
from tests.conftest import build_app
from tests.factories import make_admin, make_user
from tests.support.servers import free_port
from tests.wallet.conftest import DEBTOR
from tests.wallet.helpers import FlakyBank, assert_books_balance, balance, verified_user_with_bank

pytestmark = pytest.mark.redis


def subjects(outbox: Path) -> list[str]:
    return sorted(p.read_text().split("Subject: ", 1)[1].split("\n", 1)[0] for p in outbox.glob("*.eml"))


def run_worker(connection, worker_app, monkeypatch) -> None:
    """What `rq worker --burst` does, in this process: the jobs build no app of their own
    but use worker_app (as the worker's create_app would, with the same payout provider)."""
    from rq import SimpleWorker

    monkeypatch.setattr(jobs, "_worker_app", worker_app)
    assert SimpleWorker([jobs.QUEUE_NAME], connection=connection).work(burst=True)


def rq_app(tmp_path, redis_url, **extra):
    return build_app(f"sqlite:///{tmp_path / 'rq.db'}", REDIS_URL=redis_url, JOBS_MODE="rq",
                     MAIL_OUTBOX_DIR=str(tmp_path / "outbox"), **DEBTOR, **extra)


def test_a_sent_batch_is_paid_at_once_and_its_emails_go_out_through_the_worker(tmp_path, redis_url, monkeypatch):
    app = rq_app(tmp_path, redis_url)
    with app.app_context():
        admin, user = make_admin(), make_user()
        deposits.start_deposit(user.id, Decimal("30.00"))  # demo credits: spendable, never withdrawable
        adjust_credits(user.id, Decimal("60.00"), "Test funds", admin.id)
        verified_user_with_bank(user.id, admin.id)
        withdrawal = withdrawals.request_withdrawal(user.id, Decimal("60.00"))
        withdrawals.approve_withdrawal(withdrawal.id, admin.id)
        assert not [job_id for job_id in jobs.queue().job_ids if job_id.startswith("payout-")]  # nothing to run
        batch = batches.create_batch(admin.id)
        batches.mark_batch_sent(batch.id, admin.id, "BANK-1")
        assert db.session.get(Withdrawal, withdrawal.id).status == "paid"  # paid by the sending, not by a job
        assert f"email-withdrawal-{withdrawal.id}-paid" in jobs.queue().job_ids
        connection, user_id = jobs.redis_connection(), user.id
    run_worker(connection, app, monkeypatch)
    with app.app_context():
        assert balance(user_id) == Decimal("30.00")
    assert subjects(tmp_path / "outbox") == ["[EduTradeX] Deposit received", "[EduTradeX] Identity verified",
                                             "[EduTradeX] Withdrawal paid", "[EduTradeX] Withdrawal requested"]
    assert_books_balance(app)


def test_a_payout_whose_job_was_lost_is_restarted_and_paid_once_the_worker_runs(tmp_path, redis_url, monkeypatch):
    """Redis is unreachable when the admin approves (the job is never enqueued) and no worker
    runs: the reconciler enqueues the payout once it is due, and the worker pays it later."""
    bank = FlakyBank()
    app = rq_app(tmp_path, redis_url)
    app.extensions["wallet_payout_provider"] = bank
    with app.app_context():
        admin, user = make_admin(), make_user()
        adjust_credits(user.id, Decimal("90.00"), "Test funds", admin.id)
        verified_user_with_bank(user.id, admin.id)
        withdrawal = withdrawals.request_withdrawal(user.id, Decimal("60.00"))
        withdrawal_id, user_id = withdrawal.id, user.id

        app.config["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"  # Redis down
        app.extensions.pop("redis_connections", None)
        approved_at = withdrawals.approve_withdrawal(withdrawal_id, admin.id).decided_at  # commits; the enqueue fails
        app.config["REDIS_URL"] = redis_url  # Redis back
        app.extensions.pop("redis_connections", None)
        assert f"payout-{withdrawal_id}" not in jobs.queue().job_ids
        assert db.session.get(Withdrawal, withdrawal_id).status == "approved"

        assert withdrawals.reconcile_payouts(approved_at + timedelta(seconds=5)) == 0  # its job may still be on its way
        later = approved_at + timedelta(seconds=61)
        assert withdrawals.reconcile_payouts(later) == 1
        assert withdrawals.reconcile_payouts(later) == 1  # the worker is down: still due, but not queued twice
        assert jobs.queue().job_ids.count(f"payout-{withdrawal_id}") == 1
        db.session.expire_all()
        assert db.session.get(Withdrawal, withdrawal_id).status == "approved" and bank.calls == []
        connection = jobs.redis_connection()

    run_worker(connection, app, monkeypatch)  # the worker comes back
    with app.app_context():
        db.session.expire_all()
        paid = db.session.get(Withdrawal, withdrawal_id)
        assert (paid.status, paid.provider_ref) == ("paid", f"fb-{withdrawal_id}")
        assert bank.calls == [withdrawal_id] and balance(user_id) == Decimal("30.00")
        assert withdrawals.reconcile_payouts(later + timedelta(days=1)) == 0
    assert "[EduTradeX] Withdrawal paid" in subjects(tmp_path / "outbox")
    assert_books_balance(app)


def test_the_paid_email_survives_an_smtp_outage(tmp_path, redis_url, smtp_server, monkeypatch):
    """Delivery jobs are retried with backoff: SMTP down when the worker first runs, the
    "Withdrawal paid" email is scheduled again (not dropped) and sent once SMTP is back."""
    from rq import SimpleWorker
    from rq.registry import FailedJobRegistry, ScheduledJobRegistry

    from edutradex import mail

    monkeypatch.setattr(mail, "RETRY_INTERVALS", (1, 1))
    smtp_down = {**smtp_server.app_config, "MAIL_PORT": free_port()}
    app = rq_app(tmp_path, redis_url, **smtp_down)
    with app.app_context():
        admin, user = make_admin(), make_user()
        adjust_credits(user.id, Decimal("90.00"), "Test funds", admin.id)
        verified_user_with_bank(user.id, admin.id)
        withdrawal_id = withdrawals.request_withdrawal(user.id, Decimal("60.00")).id
        withdrawals.approve_withdrawal(withdrawal_id, admin.id)
        batches.mark_batch_sent(batches.create_batch(admin.id).id, admin.id, "BANK-2")
        queue, connection = jobs.queue(), jobs.redis_connection()
    paid_email = f"email-withdrawal-{withdrawal_id}-paid"

    run_worker(connection, app, monkeypatch)  # SMTP is down
    assert smtp_server.messages == []
    assert paid_email in ScheduledJobRegistry(queue=queue).get_job_ids()
    assert paid_email not in FailedJobRegistry(queue=queue).get_job_ids()

    up = rq_app(tmp_path, redis_url, **smtp_server.app_config)  # SMTP is back (the worker restarted with it)
    monkeypatch.setattr(jobs, "_worker_app", up)
    time.sleep(1.2)
    SimpleWorker([jobs.QUEUE_NAME], connection=connection).work(burst=True, with_scheduler=True)
    smtp_server.wait_for(3)
    assert sorted(smtp_server.subjects()) == ["[EduTradeX] Identity verified",
                                              "[EduTradeX] Withdrawal paid", "[EduTradeX] Withdrawal requested"]
