"""Payouts and emails as RQ jobs (production mode), run by a real worker on a real Redis."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from edutradex import jobs
from edutradex.extensions import db
from edutradex.wallet import deposits, withdrawals
from edutradex.wallet.models import Withdrawal
from edutradex.wallet.service import adjust_credits
from tests.conftest import build_app
from tests.factories import make_admin, make_user
from tests.wallet.helpers import assert_books_balance, balance, verified_user_with_bank

pytestmark = pytest.mark.redis


def test_the_payout_and_its_emails_run_in_an_rq_worker(tmp_path, redis_url, monkeypatch):
    from rq import SimpleWorker

    db_url, outbox = f"sqlite:///{tmp_path / 'rq.db'}", tmp_path / "outbox"
    app = build_app(db_url, REDIS_URL=redis_url, JOBS_MODE="rq", MAIL_OUTBOX_DIR=str(outbox))
    with app.app_context():
        admin, user = make_admin(), make_user()
        deposits.start_deposit(user.id, Decimal("30.00"))  # demo credits: spendable, never withdrawable
        adjust_credits(user.id, Decimal("60.00"), "Test funds", admin.id)
        verified_user_with_bank(user.id, admin.id)
        withdrawal = withdrawals.request_withdrawal(user.id, Decimal("60.00"))
        withdrawals.approve_withdrawal(withdrawal.id, admin.id)
        assert db.session.get(Withdrawal, withdrawal.id).status == "approved"  # not paid by the web request
        assert f"payout-{withdrawal.id}" in jobs.queue().job_ids
        connection, user_id = jobs.redis_connection(), user.id
    # The worker builds its own app from the environment, as `rq worker` does.
    monkeypatch.setenv("EDUTRADEX_ENV", "testing")
    monkeypatch.setattr("config.TestingConfig.SQLALCHEMY_DATABASE_URI", db_url)
    monkeypatch.setattr("config.TestingConfig.REDIS_URL", redis_url)
    monkeypatch.setattr("config.TestingConfig.JOBS_MODE", "rq")
    monkeypatch.setattr("config.TestingConfig.MAIL_OUTBOX_DIR", str(outbox))
    monkeypatch.setattr(jobs, "_worker_app", None)
    assert SimpleWorker([jobs.QUEUE_NAME], connection=connection).work(burst=True)
    with app.app_context():
        db.session.expire_all()
        assert db.session.get(Withdrawal, withdrawal.id).status == "paid"
        assert balance(user_id) == Decimal("30.00")
    subjects = sorted(p.read_text().split("Subject: ", 1)[1].split("\n", 1)[0] for p in Path(outbox).glob("*.eml"))
    assert subjects == ["[EduTradeX] Deposit received", "[EduTradeX] Identity verified",
                        "[EduTradeX] Withdrawal paid", "[EduTradeX] Withdrawal requested"]
    assert_books_balance(app)
