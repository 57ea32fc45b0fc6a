"""Admin → Payouts: SEPA batches from approved withdrawals, the pain.001 download, mark
sent / failed (whole or one line), and the withdrawal's "fail and reverse" — each audited."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from decimal import Decimal

from edutradex.extensions import db
from edutradex.wallet.models import PayoutBatch, PayoutBatchLine, Withdrawal
from edutradex.wallet.withdrawals import approve_withdrawal
from tests.wallet.conftest import DEBTOR
from tests.wallet.helpers import FlakyBank

from .conftest import audit_count, audit_entries
from .test_finance import IBAN, wallet_balance, withdrawal_for

NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"}


def approved(app, user_id: int, admin_id: int) -> int:
    withdrawal_id = withdrawal_for(app, user_id, admin_id)
    with app.app_context():
        approve_withdrawal(withdrawal_id, admin_id)
    return withdrawal_id


def status_of(app, withdrawal_id: int) -> str:
    with app.app_context():
        return db.session.get(Withdrawal, withdrawal_id).status


def test_a_batch_from_create_to_download_to_sent(app, client, admin, admin_id, target_id):
    app.config.update(DEBTOR)
    withdrawal_id = approved(app, target_id, admin_id)
    page = client.get("/admin/payouts").get_data(as_text=True)
    assert "1 approved withdrawal(s) waiting, 40.00 EUR" in page and "DE02 **** **** **** 2051" in page

    response = admin.post("/admin/payouts")
    assert response.status_code == 302
    with app.app_context():
        batch_id = db.session.scalar(db.select(PayoutBatch.id))
    assert response.headers["Location"].endswith(f"/admin/payouts/{batch_id}")
    [created] = audit_entries(app, "payout_batch.create")
    assert created.target_id == str(batch_id)
    assert created.after == {"status": "open", "lines": 1, "total": "40.00", "withdrawal_ids": [withdrawal_id]}
    detail = client.get(f"/admin/payouts/{batch_id}").get_data(as_text=True)
    assert "Tara Target" in detail and IBAN not in detail and f"EDX-W{withdrawal_id}" in detail

    download = admin.post(f"/admin/payouts/{batch_id}/download")
    assert download.status_code == 200 and download.mimetype == "application/xml"
    assert "attachment" in download.headers["Content-Disposition"]
    root = ET.fromstring(download.data)
    [tx] = root.findall(".//p:CdtTrfTxInf", NS)
    assert tx.findtext("p:CdtrAcct/p:Id/p:IBAN", namespaces=NS) == IBAN
    assert Decimal(tx.findtext("p:Amt/p:InstdAmt", namespaces=NS)) == Decimal("40.00")
    assert Decimal(root.findtext(".//p:GrpHdr/p:CtrlSum", namespaces=NS)) == Decimal("40.00")
    assert len(audit_entries(app, "payout_batch.download")) == 1
    assert status_of(app, withdrawal_id) == "processing"

    before = audit_count(app)
    assert admin.post(f"/admin/payouts/{batch_id}/sent", {"bank_reference": ""}).status_code == 400
    assert audit_count(app) == before and status_of(app, withdrawal_id) == "processing"
    assert admin.post(f"/admin/payouts/{batch_id}/sent", {"bank_reference": "BANK-77"}).status_code == 302
    assert status_of(app, withdrawal_id) == "paid"
    [sent] = audit_entries(app, "payout_batch.sent")
    assert sent.after == {"status": "sent", "bank_reference": "BANK-77"}
    assert admin.post(f"/admin/payouts/{batch_id}/sent", {"bank_reference": "BANK-78"}).status_code == 409
    assert len(audit_entries(app, "payout_batch.sent")) == 1
    assert "BANK-77" in client.get("/admin/payouts").get_data(as_text=True)


def test_failing_a_line_then_the_batch_is_audited_and_reverses_once(app, client, admin, admin_id, target_id):
    app.config.update(DEBTOR)
    withdrawal_id = approved(app, target_id, admin_id)
    admin.post("/admin/payouts")
    with app.app_context():
        batch_id, line_id = db.session.execute(db.select(PayoutBatchLine.batch_id, PayoutBatchLine.id)).one()
    assert admin.post(f"/admin/payouts/{batch_id}/lines/{line_id}/fail", {"reason": ""}).status_code == 422
    response = admin.post(f"/admin/payouts/{batch_id}/lines/{line_id}/fail", {"reason": "Account closed"})
    assert response.status_code == 302
    assert status_of(app, withdrawal_id) == "failed" and wallet_balance(app, target_id) == Decimal("100.00")
    [entry] = audit_entries(app, "payout_batch_line.fail")
    assert entry.before["withdrawal_id"] == withdrawal_id and entry.note == "Account closed"
    assert admin.post(f"/admin/payouts/{batch_id}/lines/{line_id}/fail", {"reason": "Again"}).status_code == 409
    assert admin.post(f"/admin/payouts/{batch_id}/fail", {"reason": "File refused"}).status_code == 302
    assert wallet_balance(app, target_id) == Decimal("100.00")
    assert admin.post(f"/admin/payouts/{batch_id}/download").status_code == 400  # nothing left to send


def test_a_batch_is_refused_until_the_platforms_account_is_configured(app, client, admin, admin_id, target_id):
    withdrawal_id = approved(app, target_id, admin_id)
    page = client.get("/admin/payouts").get_data(as_text=True)
    assert "set PAYOUT_DEBTOR_NAME, PAYOUT_DEBTOR_IBAN, PAYOUT_DEBTOR_BIC" in page
    response = admin.post("/admin/payouts")
    assert response.status_code == 400 and "PAYOUT_DEBTOR_IBAN" in response.get_data(as_text=True)
    assert status_of(app, withdrawal_id) == "approved" and audit_entries(app, "payout_batch.create") == []


def test_an_approved_withdrawal_can_be_failed_and_reversed(app, client, admin, admin_id, target_id):
    withdrawal_id = approved(app, target_id, admin_id)
    html = client.get("/admin/withdrawals?status=approved").get_data(as_text=True)
    assert "Fail and reverse" in html and "Retry payout" not in html  # SEPA: nothing to retry
    response = admin.post(f"/admin/withdrawals/{withdrawal_id}/retry")
    assert response.status_code == 400 and "payout batch" in response.get_data(as_text=True).lower()
    assert admin.post(f"/admin/withdrawals/{withdrawal_id}/fail", {"reason": ""}).status_code == 422
    assert admin.post(f"/admin/withdrawals/{withdrawal_id}/fail", {"reason": "Bank details unusable"}).status_code == 302
    assert status_of(app, withdrawal_id) == "failed" and wallet_balance(app, target_id) == Decimal("100.00")
    [entry] = audit_entries(app, "withdrawal.fail")
    assert entry.before["status"] == "approved" and entry.note == "Bank details unusable"
    assert admin.post(f"/admin/withdrawals/{withdrawal_id}/fail", {"reason": "Twice"}).status_code == 409
    assert wallet_balance(app, target_id) == Decimal("100.00")


def test_a_payout_at_a_provider_that_is_down_can_be_retried_by_an_admin(app, client, admin, admin_id, target_id):
    app.extensions["wallet_payout_provider"] = bank = FlakyBank(outages=1)
    withdrawal_id = withdrawal_for(app, target_id, admin_id)
    assert admin.post(f"/admin/withdrawals/{withdrawal_id}/approve").status_code == 302  # the job: bank down
    assert status_of(app, withdrawal_id) == "approved"
    html = client.get("/admin/withdrawals?status=approved").get_data(as_text=True)
    assert "Retry payout" in html and "1 payout attempt(s): flaky-bank: connection refused" in html
    assert admin.post(f"/admin/withdrawals/{withdrawal_id}/retry").status_code == 302
    assert status_of(app, withdrawal_id) == "paid" and bank.calls == [withdrawal_id, withdrawal_id]
    [entry] = audit_entries(app, "withdrawal.retry")
    assert entry.before == {"status": "approved", "payout_attempts": 1, "last_error": "flaky-bank: connection refused"}
    assert admin.post(f"/admin/withdrawals/{withdrawal_id}/retry").status_code == 409
