"""SEPA payout batches: approved withdrawals reach the users' own IBANs through a pain.001
file the admin uploads to the platform's bank; they are paid (and the users told) only when
the batch is marked sent; a failed batch or line gives the credits back exactly once."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest

from edutradex.errors import Conflict, DomainError
from edutradex.extensions import db
from edutradex.wallet import batches, withdrawals
from edutradex.wallet.models import LedgerEntry, PayoutBatch, Withdrawal
from edutradex.wallet.service import adjust_credits
from edutradex.wallet.withdrawals import save_bank_account
from tests.conftest import build_app
from tests.factories import make_admin, make_user
from tests.support.smtp import text_body
from tests.wallet.conftest import DEBTOR
from tests.wallet.helpers import assert_books_balance, balance, verified_user_with_bank

NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"}
IBANS = {"Ann Lee": "FR1420041010050500013M02606", "Bo Chen": "NL91ABNA0417164300", "Cy Diaz": "GB82WEST12345698765432"}


def approved_withdrawals(admin_id: int, amounts: dict[str, str]) -> dict[str, int]:
    """One funded, verified user per holder, each with an approved withdrawal: {holder: withdrawal id}."""
    ids = {}
    for holder, amount in amounts.items():
        user = make_user(name=holder)
        adjust_credits(user.id, Decimal("100.00"), "Test funds", admin_id)  # demo deposits are never withdrawable
        verified_user_with_bank(user.id, admin_id)
        save_bank_account(user.id, IBANS[holder], holder)
        withdrawal = withdrawals.request_withdrawal(user.id, Decimal(amount))
        withdrawals.approve_withdrawal(withdrawal.id, admin_id)
        ids[holder] = withdrawal.id
    return ids


def parse(xml: bytes) -> dict:
    root = ET.fromstring(xml)
    header = root.find("p:CstmrCdtTrfInitn/p:GrpHdr", NS)
    info = root.find("p:CstmrCdtTrfInitn/p:PmtInf", NS)
    return {
        "message_id": header.findtext("p:MsgId", namespaces=NS),
        "count": int(header.findtext("p:NbOfTxs", namespaces=NS)),
        "sum": Decimal(header.findtext("p:CtrlSum", namespaces=NS)),
        "debtor": (info.findtext("p:Dbtr/p:Nm", namespaces=NS), info.findtext("p:DbtrAcct/p:Id/p:IBAN", namespaces=NS),
                   info.findtext("p:DbtrAgt/p:FinInstnId/p:BIC", namespaces=NS)),
        "transfers": [(tx.findtext("p:Cdtr/p:Nm", namespaces=NS), tx.findtext("p:CdtrAcct/p:Id/p:IBAN", namespaces=NS),
                       Decimal(tx.findtext("p:Amt/p:InstdAmt", namespaces=NS)), tx.find("p:Amt/p:InstdAmt", NS).get("Ccy"),
                       tx.findtext("p:PmtId/p:EndToEndId", namespaces=NS))
                      for tx in info.findall("p:CdtTrfTxInf", NS)],
    }


def statuses(ids) -> list[str]:
    db.session.expire_all()
    return [db.session.get(Withdrawal, i).status for i in ids]


def count_entries(entry_type: str) -> int:
    return db.session.scalar(db.select(db.func.count()).select_from(LedgerEntry).where(LedgerEntry.entry_type == entry_type))


def test_a_batch_pays_the_users_ibans_and_only_sending_it_pays(mail_app, smtp_server):
    with mail_app.app_context():
        admin = make_admin()
        ids = approved_withdrawals(admin.id, {"Ann Lee": "40.00", "Bo Chen": "12.34"})
        assert statuses(ids.values()) == ["approved", "approved"]
        assert "[EduTradeX] Withdrawal paid" not in smtp_server.subjects()  # approving pays nothing

        batch = batches.create_batch(admin.id)
        assert (batch.line_count, batch.total, batch.status) == (2, Decimal("52.34"), "open")
        assert statuses(ids.values()) == ["processing", "processing"]
        with pytest.raises(DomainError, match="No approved withdrawals"):
            batches.create_batch(admin.id)  # each withdrawal is in one batch only

        document = parse(batches.batch_xml(batch.id))
        assert document["message_id"] == batch.message_id
        assert (document["count"], document["sum"]) == (2, Decimal("52.34"))
        assert document["debtor"] == (DEBTOR["PAYOUT_DEBTOR_NAME"], DEBTOR["PAYOUT_DEBTOR_IBAN"], DEBTOR["PAYOUT_DEBTOR_BIC"])
        assert sorted(document["transfers"]) == [
            ("Ann Lee", IBANS["Ann Lee"], Decimal("40.00"), "EUR", f"EDX-W{ids['Ann Lee']}"),
            ("Bo Chen", IBANS["Bo Chen"], Decimal("12.34"), "EUR", f"EDX-W{ids['Bo Chen']}"),
        ]
        assert sum(t[2] for t in document["transfers"]) == document["sum"]
        assert count_entries("payout") == 0 and "[EduTradeX] Withdrawal paid" not in smtp_server.subjects()

        with pytest.raises(DomainError, match="bank's reference"):
            batches.mark_batch_sent(batch.id, admin.id, "  ")
        sent = batches.mark_batch_sent(batch.id, admin.id, "UPLOAD-2026-12-01/7")
        assert (sent.status, sent.bank_reference, sent.closed_by) == ("sent", "UPLOAD-2026-12-01/7", admin.id)
        assert statuses(ids.values()) == ["paid", "paid"]
        assert count_entries("payout") == 2
        with pytest.raises(Conflict, match="already sent"):
            batches.mark_batch_sent(batch.id, admin.id, "AGAIN")
        assert count_entries("payout") == 2
        paid = [m for m in smtp_server.messages if m["Subject"] == "[EduTradeX] Withdrawal paid"]
        assert len(paid) == 2
        body = text_body(paid[0])
        assert "sent to your bank" in body and "EDX-W" in body and IBANS["Ann Lee"] not in body
    assert_books_balance(mail_app)


def test_a_failed_batch_gives_every_withdrawal_back_once(db_app):
    with db_app.app_context():
        admin = make_admin()
        ids = approved_withdrawals(admin.id, {"Ann Lee": "30.00", "Bo Chen": "20.00"})
        users = [db.session.get(Withdrawal, i).user_id for i in ids.values()]
        batch = batches.create_batch(admin.id)
        with pytest.raises(DomainError, match="reason"):
            batches.fail_batch(batch.id, admin.id, "")
        batches.fail_batch(batch.id, admin.id, "File refused: wrong debtor account")
        assert statuses(ids.values()) == ["failed", "failed"]
        assert [balance(u) for u in users] == [Decimal("100.00"), Decimal("100.00")]
        with pytest.raises(Conflict):
            batches.fail_batch(batch.id, admin.id, "again")
        with pytest.raises(Conflict):
            batches.mark_batch_sent(batch.id, admin.id, "REF1")
        with pytest.raises(Conflict):
            batches.fail_batch_line(batch.id, batch.lines[0].id, "again")
        with pytest.raises(DomainError, match="nothing to send"):
            batches.batch_xml(batch.id)
        assert count_entries("withdrawal_reversal") == 4 and count_entries("payout") == 0
    assert_books_balance(db_app)


def test_one_line_failed_before_sending_and_one_returned_after(db_app):
    with db_app.app_context():
        admin = make_admin()
        ids = approved_withdrawals(admin.id, {"Ann Lee": "30.00", "Bo Chen": "20.00", "Cy Diaz": "10.00"})
        users = {holder: db.session.get(Withdrawal, i).user_id for holder, i in ids.items()}
        batch = batches.create_batch(admin.id)
        lines = {line.withdrawal_id: line.id for line in batch.lines}

        batches.fail_batch_line(batch.id, lines[ids["Ann Lee"]], "Bank refused: account closed")
        assert balance(users["Ann Lee"]) == Decimal("100.00")
        document = parse(batches.batch_xml(batch.id))  # the file no longer holds the failed line
        assert (document["count"], document["sum"]) == (2, Decimal("30.00"))
        assert IBANS["Ann Lee"] not in {t[1] for t in document["transfers"]}

        batches.mark_batch_sent(batch.id, admin.id, "BANK-REF-42")
        assert statuses([ids["Ann Lee"], ids["Bo Chen"], ids["Cy Diaz"]]) == ["failed", "paid", "paid"]
        assert balance(users["Bo Chen"]) == Decimal("80.00")

        batches.fail_batch_line(batch.id, lines[ids["Bo Chen"]], "Returned by the bank: name does not match")
        assert statuses([ids["Bo Chen"], ids["Cy Diaz"]]) == ["failed", "paid"]
        assert balance(users["Bo Chen"]) == Decimal("100.00")
        with pytest.raises(Conflict):
            batches.fail_batch_line(batch.id, lines[ids["Bo Chen"]], "twice")
        with pytest.raises(DomainError, match="No such line"):
            batches.fail_batch_line(batch.id + 1, lines[ids["Cy Diaz"]], "wrong batch")
        assert balance(users["Bo Chen"]) == Decimal("100.00")
        assert count_entries("payout_return") == 1 and count_entries("payout") == 2
        failed = db.session.get(Withdrawal, ids["Bo Chen"])
        assert failed.failure_reason == "Returned by the bank: name does not match"
    assert_books_balance(db_app)


@pytest.mark.parametrize("settings, message", [
    ({}, "set PAYOUT_DEBTOR_NAME, PAYOUT_DEBTOR_IBAN, PAYOUT_DEBTOR_BIC"),
    ({**DEBTOR, "PAYOUT_DEBTOR_IBAN": "DE02120300000000202052"}, "misconfigured: This PAYOUT_DEBTOR_IBAN's check digits"),
    ({**DEBTOR, "PAYOUT_DEBTOR_BIC": "BYLAXXM1001"}, "misconfigured: .*country code"),
])
def test_batches_need_the_platforms_own_bank_account(tmp_path, settings, message):
    app = build_app(f"sqlite:///{tmp_path / 'nodebtor.db'}", MAIL_OUTBOX_DIR=str(tmp_path / "outbox"), **settings)
    with app.app_context():
        admin = make_admin()
        ids = approved_withdrawals(admin.id, {"Ann Lee": "30.00"})
        with pytest.raises(DomainError, match=message):
            batches.create_batch(admin.id)
        assert statuses(ids.values()) == ["approved"]
        assert db.session.scalar(db.select(db.func.count()).select_from(PayoutBatch)) == 0
