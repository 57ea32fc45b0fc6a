"""KYC: encrypted at rest, reviewed by an admin (service functions), decision emailed."""

from __future__ import annotations

from datetime import date
from email import message_from_bytes

import pytest
from cryptography.fernet import Fernet

import config
from edutradex import create_app
from edutradex.errors import Conflict, DomainError, InvalidFields
from edutradex.wallet import kyc
from edutradex.wallet.crypto import decrypt_text, encrypt_text
from tests.conftest import build_app
from tests.factories import make_admin, make_user
from tests.support.smtp import text_body

DETAILS = ("Ann Lee", "1990-05-17", "FR", "1 rue de Rivoli, 75001 Paris", "AB1234567")


def outbox(app):
    from pathlib import Path

    folder = Path(app.config["MAIL_OUTBOX_DIR"])
    return [message_from_bytes(p.read_bytes()) for p in sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime)]


def test_approval_is_emailed_to_the_outbox_without_a_mail_server(app):
    with app.app_context():
        admin, user = make_admin(), make_user()
        submission = kyc.submit_kyc(user.id, *DETAILS)
        assert kyc.submission_details(submission.id) == {
            "legal_name": "Ann Lee", "date_of_birth": "1990-05-17", "country": "FR",
            "address": "1 rue de Rivoli, 75001 Paris", "id_number": "AB1234567"}
        assert [s.id for s in kyc.pending_submissions()] == [submission.id]
        kyc.approve_kyc(submission.id, admin.id)
        assert kyc.is_verified(user.id)
        with pytest.raises(Conflict):
            kyc.approve_kyc(submission.id, admin.id)
        with pytest.raises(Conflict, match="already verified"):
            kyc.submit_kyc(user.id, *DETAILS)
        [mail] = outbox(app)
        assert mail["Subject"] == "[EduTradeX] Identity verified" and mail["To"] == user.email


def test_rejection_needs_a_reason_and_the_user_can_resubmit(app):
    with app.app_context():
        admin, user = make_admin(), make_user()
        submission = kyc.submit_kyc(user.id, *DETAILS)
        with pytest.raises(DomainError, match="reason"):
            kyc.reject_kyc(submission.id, admin.id, "")
        kyc.reject_kyc(submission.id, admin.id, "The document number is unreadable")
        assert kyc.kyc_status(user.id) == "rejected"
        assert "The document number is unreadable" in text_body(outbox(app)[0])
        again = kyc.submit_kyc(user.id, *DETAILS)
        assert again.id != submission.id and kyc.kyc_status(user.id) == "pending"


@pytest.mark.parametrize("field, value, message", [
    (0, "A", "legal name"), (1, "17/05/1990", "YYYY-MM-DD"), (1, "2999-01-01", "real date"),
    (1, "2010-01-01", "at least 18"), (2, "ZZ", "country"), (3, "x", "full address"), (4, "!!", "ID document"),
])
def test_bad_kyc_details_are_refused(app, field, value, message):
    with app.app_context():
        user = make_user()
        details = list(DETAILS)
        details[field] = value
        with pytest.raises(DomainError, match=message):
            kyc.submit_kyc(user.id, *details)
        assert kyc.latest_submission(user.id) is None


def test_the_eighteenth_birthday_counts():
    assert kyc.validate_details(*DETAILS[:1], "2000-03-01", *DETAILS[2:], today=date(2018, 3, 1)).country == "FR"
    with pytest.raises(DomainError):
        kyc.validate_details(*DETAILS[:1], "2000-03-02", *DETAILS[2:], today=date(2018, 3, 1))


def test_keys_rotate_old_data_stays_readable(tmp_path):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    first = build_app(f"sqlite:///{tmp_path / 'a.db'}", KYC_ENCRYPTION_KEY=old)
    with first.app_context():
        token = encrypt_text("DE89370400440532013000")
    rotated = build_app(f"sqlite:///{tmp_path / 'b.db'}", KYC_ENCRYPTION_KEY=f"{new},{old}")
    with rotated.app_context():
        assert decrypt_text(token) == "DE89370400440532013000"
    with pytest.raises(RuntimeError, match="Fernet"):
        build_app(f"sqlite:///{tmp_path / 'c.db'}", KYC_ENCRYPTION_KEY="not-a-key")


def test_production_refuses_to_start_without_a_kyc_key(monkeypatch):
    monkeypatch.setattr(config.ProductionConfig, "SECRET_KEY", "x" * 40)
    monkeypatch.setattr(config.ProductionConfig, "KYC_ENCRYPTION_KEY", None)
    with pytest.raises(RuntimeError, match="KYC_ENCRYPTION_KEY"):
        create_app(config.ProductionConfig)


def test_production_refuses_stripe_without_a_webhook_secret(monkeypatch):
    monkeypatch.setattr(config.ProductionConfig, "SECRET_KEY", "x" * 40)
    monkeypatch.setattr(config.ProductionConfig, "KYC_ENCRYPTION_KEY", Fernet.generate_key().decode())
    monkeypatch.setattr(config.ProductionConfig, "STRIPE_SECRET_KEY", "sk_live_x")
    monkeypatch.setattr(config.ProductionConfig, "STRIPE_WEBHOOK_SECRET", None)
    with pytest.raises(RuntimeError, match="STRIPE_WEBHOOK_SECRET"):
        create_app(config.ProductionConfig)


def test_every_wrong_kyc_field_is_named_at_once():
    with pytest.raises(InvalidFields) as refused:
        kyc.validate_details("A", "17/05/1990", "ZZ", "x", "!!", today=date(2020, 1, 1))
    assert set(refused.value.field_errors) == {"legal_name", "date_of_birth", "country", "address", "id_number"}


def test_a_submission_carries_keyed_fingerprints_of_the_document_and_the_person(app):
    from sqlalchemy import update

    from edutradex.extensions import db
    from edutradex.wallet.crypto import identity_fingerprints
    from edutradex.wallet.models import KycSubmission

    with app.app_context():
        submission = kyc.submit_kyc(make_user().id, *DETAILS)
        submission_id, document, person = submission.id, submission.document_fingerprint, submission.person_fingerprint
        assert len(document) == len(person) == 64 and document != person
        assert "AB1234567" not in document + person and "1990" not in person
        # spelling does not make another document or person; another key gives other fingerprints
        assert identity_fingerprints("fr", "ab-123 4567", "  ANN   lée ", "1990-05-17") == (document, person)
        app.config["IDENTITY_FINGERPRINT_KEY"] = "another key"
        assert set(identity_fingerprints("FR", "AB1234567", "Ann Lee", "1990-05-17")).isdisjoint({document, person})
        del app.config["IDENTITY_FINGERPRINT_KEY"]
        # a submission from before fingerprints existed gets them from `flask wallet fingerprint-kyc`
        db.session.execute(update(KycSubmission).values(document_fingerprint=None, person_fingerprint=None))
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["wallet", "fingerprint-kyc"])
    assert result.exit_code == 0 and "1 KYC submission(s) fingerprinted." in result.output
    with app.app_context():
        db.session.expire_all()
        filled = db.session.get(KycSubmission, submission_id)
        assert (filled.document_fingerprint, filled.person_fingerprint) == (document, person)
    assert "0 KYC submission(s)" in app.test_cli_runner().invoke(args=["wallet", "fingerprint-kyc"]).output
