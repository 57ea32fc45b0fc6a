"""KYC and withdrawal queues, and credit adjustments: the admin decides through the
wallet's services; each decision is audited, emailed, paid out or reversed."""

import re
from decimal import Decimal

from sqlalchemy import func, select

from edutradex.extensions import db
from edutradex.wallet import kyc
from edutradex.wallet.ledger import get_or_create_wallet
from edutradex.wallet.models import KycSubmission, LedgerEntry, Withdrawal, WithdrawalStatus
from edutradex.wallet.service import adjust_credits
from edutradex.wallet.withdrawals import request_withdrawal, run_payout, save_bank_account
from tests.factories import make_admin

from .conftest import audit_entries

IBAN = "DE89370400440532013000"


def submit(user_id: int) -> int:
    return kyc.submit_kyc(user_id, "Tara Target", "1990-04-01", "DE", "Hauptstr. 1, 10115 Berlin", "C01X00T47").id


def outbox(app) -> list[str]:
    from pathlib import Path

    folder = Path(app.config["MAIL_OUTBOX_DIR"])
    return [p.read_text() for p in sorted(folder.glob("*.eml"))] if folder.exists() else []


def wallet_balance(app, user_id: int) -> Decimal:
    with app.app_context():
        return get_or_create_wallet(user_id).balance


# ---- KYC --------------------------------------------------------------------------

def test_kyc_queue_lists_pending_submissions_with_their_details(app, client, admin, target_id):
    with app.app_context():
        submit(target_id)
    html = client.get("/admin/kyc").get_data(as_text=True)
    assert "target@example.com" in html and "Tara Target" in html and "C01X00T47" in html
    assert "No identity checks are waiting" not in html
    assert "No approved submissions" in client.get("/admin/kyc?status=approved").get_data(as_text=True)


def test_approve_kyc_is_audited_and_emailed(app, client, admin, admin_id, target_id):
    with app.app_context():
        submission_id = submit(target_id)
    response = admin.post(f"/admin/kyc/{submission_id}/approve", {"note": "passport checked"}, htmx=True)
    assert response.status_code == 204
    with app.app_context():
        assert kyc.is_verified(target_id)
        assert db.session.get(KycSubmission, submission_id).reviewed_by == admin_id
    [entry] = audit_entries(app, "kyc.approve")
    assert (entry.target_type, entry.target_id, entry.note) == ("kyc_submission", str(submission_id), "passport checked")
    assert entry.before["status"] == "pending" and entry.after == {"status": "approved"}
    assert any("Identity verified" in mail and "target@example.com" in mail for mail in outbox(app))
    # decided once: a second decision is refused and records nothing
    assert admin.post(f"/admin/kyc/{submission_id}/reject", {"reason": "changed my mind"}).status_code == 409
    assert len(audit_entries(app)) == 1


def test_reject_kyc_needs_a_reason_which_is_emailed(app, client, admin, target_id):
    with app.app_context():
        submission_id = submit(target_id)
    response = admin.post(f"/admin/kyc/{submission_id}/reject", {"reason": " "}, htmx=True)
    assert response.status_code == 422 and "reason" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(KycSubmission, submission_id).status == "pending"
    assert audit_entries(app) == []

    assert admin.post(f"/admin/kyc/{submission_id}/reject", {"reason": "The photo is blurred"}).status_code == 302
    with app.app_context():
        assert db.session.get(KycSubmission, submission_id).status == "rejected"
    [entry] = audit_entries(app, "kyc.reject")
    assert entry.note == "The photo is blurred"
    assert any("The photo is blurred" in mail for mail in outbox(app))


# ---- withdrawals --------------------------------------------------------------------

def withdrawal_for(app, user_id: int, admin_id: int, amount: str = "40.00") -> int:
    with app.app_context():
        kyc.approve_kyc(submit(user_id), admin_id)
        save_bank_account(user_id, IBAN, "Tara Target")
        adjust_credits(user_id, Decimal("100.00"), "test funds", admin_id)
        return request_withdrawal(user_id, Decimal(amount)).id


def test_withdrawal_queue_shows_requests(app, client, admin, admin_id, target_id):
    withdrawal_id = withdrawal_for(app, target_id, admin_id)
    html = client.get("/admin/withdrawals").get_data(as_text=True)
    assert f'data-testid="withdrawal-{withdrawal_id}"' in html and "40.00" in html and "Tara Target" in html
    assert IBAN not in html  # only the masked IBAN


def test_approve_withdrawal_queues_it_for_a_payout_batch_and_is_audited(app, client, admin, admin_id, target_id):
    withdrawal_id = withdrawal_for(app, target_id, admin_id)
    response = admin.post(f"/admin/withdrawals/{withdrawal_id}/approve", {"note": "ok"})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(Withdrawal, withdrawal_id).status == "approved"  # paid when its batch is sent
        run_payout(withdrawal_id)  # no payout provider: a stray job pays nothing
        db.session.expire_all()
        assert db.session.get(Withdrawal, withdrawal_id).status == "approved"
    [entry] = audit_entries(app, "withdrawal.approve")
    assert entry.before == {"status": "requested", "amount": "40.00", "user_id": target_id}
    assert entry.note == "ok"
    assert wallet_balance(app, target_id) == Decimal("60.00")


def test_reject_withdrawal_reverses_it(app, client, admin, admin_id, target_id):
    withdrawal_id = withdrawal_for(app, target_id, admin_id)
    assert wallet_balance(app, target_id) == Decimal("60.00")
    assert admin.post(f"/admin/withdrawals/{withdrawal_id}/reject", {"reason": ""}).status_code == 422
    assert admin.post(f"/admin/withdrawals/{withdrawal_id}/reject", {"reason": "IBAN does not match the name"}).status_code == 302
    with app.app_context():
        withdrawal = db.session.get(Withdrawal, withdrawal_id)
        assert withdrawal.status == "rejected" and withdrawal.failure_reason == "IBAN does not match the name"
    assert wallet_balance(app, target_id) == Decimal("100.00")
    [entry] = audit_entries(app, "withdrawal.reject")
    assert entry.note == "IBAN does not match the name"


# ---- credit adjustments ---------------------------------------------------------------

def credits_form_key(client, user_id: int) -> str:
    """The one-time key the adjustment form was rendered with, as the browser would send it."""
    html = client.get(f"/admin/users/{user_id}").get_data(as_text=True)
    return re.search(r'name="form_key" value="([0-9a-f]{32})"', html).group(1)


def adjust(admin, client, user_id: int, amount: str, reason: str, *, htmx: bool = False, key: str | None = None):
    data = {"amount": amount, "reason": reason, "form_key": key or credits_form_key(client, user_id)}
    return admin.post(f"/admin/users/{user_id}/credits", data, htmx=htmx)


def adjustment_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.entry_type == "adjustment"))


def test_adjust_credits_posts_a_ledger_entry_with_the_reason(app, client, admin, admin_id, target_id):
    response = adjust(admin, client, target_id, "25.50", "Goodwill for outage")
    assert response.status_code == 302
    assert wallet_balance(app, target_id) == Decimal("25.50")
    with app.app_context():
        entry = db.session.scalar(select(LedgerEntry).where(LedgerEntry.entry_type == "adjustment"))
        assert (entry.reason, entry.actor_id, entry.amount) == ("Goodwill for outage", admin_id, Decimal("25.50"))
    [audit] = audit_entries(app, "user.adjust_credits")
    assert audit.note == "Goodwill for outage"
    assert audit.before == {"credit_balance": "0.00"} and audit.after == {"credit_balance": "25.50", "amount": "25.50"}

    assert adjust(admin, client, target_id, "-5", "Correction").status_code == 302
    assert wallet_balance(app, target_id) == Decimal("20.50")
    page = client.get(f"/admin/users/{target_id}").get_data(as_text=True)
    assert 'data-testid="user-credit-balance">20.50' in page and 'data-testid="user-withdrawable">20.50' in page


def test_adjust_credits_refuses_bad_input_and_overdrafts(app, client, admin, target_id):
    key = credits_form_key(client, target_id)
    for amount, reason in [("10", ""), ("NaN", "x reason"), ("1e309", "x reason"), ("1.001", "x reason"),
                           ("0", "x reason"), ("abc", "x reason"), ("-1", "take too much"),
                           ("1" * 29, "x reason"), ("9" * 16 + ".99", "x reason"), ("1000000000.01", "x reason")]:
        response = adjust(admin, client, target_id, amount, reason, htmx=True, key=key)
        assert 400 <= response.status_code < 500, (amount, reason)
        assert response.headers["HX-Retarget"] == "#toasts"
    assert wallet_balance(app, target_id) == Decimal("0.00")
    assert audit_entries(app) == []


def test_a_double_submitted_adjustment_credits_once_and_is_audited_once(app, client, admin, target_id):
    key = credits_form_key(client, target_id)
    first = adjust(admin, client, target_id, "25.00", "Goodwill for outage", key=key)
    second = adjust(admin, client, target_id, "25.00", "Goodwill for outage", key=key)
    assert first.status_code == second.status_code == 302
    assert "already submitted" in client.get(second.headers["Location"]).get_data(as_text=True)
    assert wallet_balance(app, target_id) == Decimal("25.00")
    assert adjustment_count(app) == 1
    assert len(audit_entries(app, "user.adjust_credits")) == 1
    # The same key cannot be reused for another amount; a freshly rendered form can.
    reused = adjust(admin, client, target_id, "30.00", "Another one", htmx=True, key=key)
    assert reused.status_code == 409 and "another adjustment" in reused.get_data(as_text=True)
    assert adjust(admin, client, target_id, "25.00", "Goodwill for outage").status_code == 302
    assert wallet_balance(app, target_id) == Decimal("50.00")
    assert len(audit_entries(app, "user.adjust_credits")) == 2


def test_an_adjustment_without_the_forms_key_is_refused(app, client, admin, target_id):
    for key in ("", "not-a-key", "A" * 32):
        response = admin.post(f"/admin/users/{target_id}/credits",
                              {"amount": "5.00", "reason": "Goodwill", "form_key": key}, htmx=True)
        assert response.status_code == 422 and "reload the page" in response.get_data(as_text=True)
    assert wallet_balance(app, target_id) == Decimal("0.00")
    assert audit_entries(app) == []


# ---- four eyes ------------------------------------------------------------------------

def test_an_admin_cannot_adjust_their_own_credits(app, client, admin, admin_id):
    html = client.get(f"/admin/users/{admin_id}").get_data(as_text=True)
    assert 'data-testid="own-credits-note"' in html and 'name="form_key"' not in html
    response = adjust(admin, client, admin_id, "100.00", "Treat myself", htmx=True, key="a" * 32)
    assert response.status_code == 403 and "your own credits" in response.get_data(as_text=True)
    assert wallet_balance(app, admin_id) == Decimal("0.00")
    assert adjustment_count(app) == 0
    assert audit_entries(app) == []


def test_an_admin_cannot_approve_their_own_kyc(app, client, admin, admin_id):
    with app.app_context():
        submission_id = submit(admin_id)
    response = admin.post(f"/admin/kyc/{submission_id}/approve", {"note": "looks fine"}, htmx=True)
    assert response.status_code == 403 and "your own identity check" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(KycSubmission, submission_id).status == "pending"
        assert not kyc.is_verified(admin_id)
    assert audit_entries(app) == []


def test_an_admin_cannot_approve_their_own_withdrawal(app, client, admin, admin_id):
    with app.app_context():
        other_admin = make_admin("second@example.com").id
    withdrawal_id = withdrawal_for(app, admin_id, other_admin)
    response = admin.post(f"/admin/withdrawals/{withdrawal_id}/approve", {"note": "ok"}, htmx=True)
    assert response.status_code == 403 and "your own withdrawal" in response.get_data(as_text=True)
    with app.app_context():
        withdrawal = db.session.get(Withdrawal, withdrawal_id)
        assert withdrawal.status == WithdrawalStatus.REQUESTED.value and withdrawal.decided_by is None
    assert wallet_balance(app, admin_id) == Decimal("60.00")
    assert audit_entries(app) == []
