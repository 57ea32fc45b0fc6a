"""Identity verification (KYC): the user's side and the review decisions. The details are
encrypted at rest; only the status, reason and timestamps are stored in clear."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select

from ..auth.models import User
from ..errors import Conflict, DomainError, Forbidden, InvalidFields, found
from ..extensions import db
from ..types import utcnow
from .crypto import decrypt_json, encrypt_json, identity_fingerprints
from .models import KycStatus, KycSubmission
from .notify import after_commit, commit, email_user
from .status import refuse, transition

MINIMUM_AGE = 18

# ISO 3166-1 alpha-2 codes of the countries we accept documents from (EEA, UK, CH and a
# few more), with the names shown in the form.
COUNTRIES = {
    "AT": "Austria", "AU": "Australia", "BE": "Belgium", "BG": "Bulgaria", "CA": "Canada", "CH": "Switzerland",
    "CY": "Cyprus", "CZ": "Czechia", "DE": "Germany", "DK": "Denmark", "EE": "Estonia", "ES": "Spain",
    "FI": "Finland", "FR": "France", "GB": "United Kingdom", "GR": "Greece", "HR": "Croatia", "HU": "Hungary",
    "IE": "Ireland", "IS": "Iceland", "IT": "Italy", "LI": "Liechtenstein", "LT": "Lithuania", "LU": "Luxembourg",
    "LV": "Latvia", "MT": "Malta", "NL": "Netherlands", "NO": "Norway", "NZ": "New Zealand", "PL": "Poland",
    "PT": "Portugal", "RO": "Romania", "SE": "Sweden", "SI": "Slovenia", "SK": "Slovakia", "US": "United States",
}
_DOCUMENT_NUMBER = re.compile(r"^[A-Z0-9][A-Z0-9 -]{3,38}[A-Z0-9]$")


@dataclass(frozen=True)
class KycDetails:
    legal_name: str
    date_of_birth: date
    country: str
    address: str
    id_number: str


def validate_details(legal_name: str, date_of_birth: str, country: str, address: str, id_number: str,
                     today: date | None = None) -> KycDetails:
    """The details, cleaned; InvalidFields naming every wrong field at once otherwise."""
    today = today or utcnow().date()
    errors: dict[str, str] = {}
    legal_name = " ".join((legal_name or "").split())
    if not 2 <= len(legal_name) <= 120:
        errors["legal_name"] = "Enter your full legal name as on your ID document."
    born = None
    try:
        born = date.fromisoformat((date_of_birth or "").strip())
    except ValueError:
        errors["date_of_birth"] = "Enter your date of birth as YYYY-MM-DD."
    if born is not None:
        age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
        if born > today or age > 120:
            errors["date_of_birth"] = "Enter a real date of birth."
        elif age < MINIMUM_AGE:
            errors["date_of_birth"] = f"You must be at least {MINIMUM_AGE} to withdraw money."
    country = (country or "").strip().upper()
    if country not in COUNTRIES:
        errors["country"] = "Choose your country of residence from the list."
    address = (address or "").strip()
    if not 5 <= len(address) <= 300:
        errors["address"] = "Enter your full address (street, postcode, city)."
    id_number = (id_number or "").strip().upper()
    if not _DOCUMENT_NUMBER.match(id_number):
        errors["id_number"] = "Enter the ID document number: 5 to 40 letters and digits."
    if errors:
        raise InvalidFields(errors)
    return KycDetails(legal_name, born, country, address, id_number)


def latest_submission(user_id: int) -> KycSubmission | None:
    return db.session.scalar(select(KycSubmission).where(KycSubmission.user_id == user_id)
                             .order_by(KycSubmission.id.desc()).limit(1))


def kyc_status(user_id: int) -> str | None:
    submission = latest_submission(user_id)
    return submission.status if submission else None


def is_verified(user_id: int) -> bool:
    return kyc_status(user_id) == KycStatus.APPROVED.value


def submit_kyc(user_id: int, legal_name: str, date_of_birth: str, country: str, address: str,
               id_number: str) -> KycSubmission:
    details = validate_details(legal_name, date_of_birth, country, address, id_number)
    status = kyc_status(user_id)
    if status == KycStatus.PENDING.value:
        raise Conflict("Your identity details are already being reviewed.")
    if status == KycStatus.APPROVED.value:
        raise Conflict("Your identity is already verified.")
    document, person = identity_fingerprints(details.country, details.id_number, details.legal_name,
                                             details.date_of_birth.isoformat())
    submission = KycSubmission(user_id=user_id, status=KycStatus.PENDING.value, document_fingerprint=document,
                               person_fingerprint=person, data_encrypted=encrypt_json({
        "legal_name": details.legal_name,
        "date_of_birth": details.date_of_birth.isoformat(),
        "country": details.country,
        "address": details.address,
        "id_number": details.id_number,
    }))
    db.session.add(submission)
    commit()
    return submission


def fingerprint_old_submissions(batch: int = 500) -> int:
    """Give the submissions made before fingerprints existed (migration 0009) theirs, so fair
    play sees them too: each is decrypted once, here. Returns how many were filled in."""
    done = 0
    while True:
        rows = db.session.scalars(select(KycSubmission).where(KycSubmission.document_fingerprint.is_(None))
                                  .order_by(KycSubmission.id).limit(batch)).all()
        if not rows:
            return done
        for submission in rows:
            details = decrypt_json(submission.data_encrypted)
            submission.document_fingerprint, submission.person_fingerprint = identity_fingerprints(
                details["country"], details["id_number"], details["legal_name"], details["date_of_birth"])
        db.session.commit()
        done += len(rows)


# The details in the order the form asks for them (the stored JSON sorts its keys).
FORM_ORDER = ("legal_name", "date_of_birth", "country", "address", "id_number")


def submission_details(submission_id: int) -> dict:
    """The decrypted details in form order, for the admin review screen."""
    submission = found(db.session.get(KycSubmission, submission_id), "No such KYC submission.")
    details = decrypt_json(submission.data_encrypted)
    rank = {key: i for i, key in enumerate(FORM_ORDER)}
    return {key: details[key] for key in sorted(details, key=lambda k: (rank.get(k, len(rank)), k))}


def pending_submissions() -> list[KycSubmission]:
    return list(db.session.scalars(select(KycSubmission).where(KycSubmission.status == KycStatus.PENDING.value)
                                   .order_by(KycSubmission.submitted_at)))


def _decide(submission_id: int, admin_id: int, status: KycStatus, reason: str | None) -> KycSubmission:
    submission = found(db.session.get(KycSubmission, submission_id), "No such KYC submission.")
    if status == KycStatus.APPROVED and submission.user_id == admin_id:
        raise Forbidden("You cannot approve your own identity check. Another admin must review it.")
    if not transition(KycSubmission, submission_id, [KycStatus.PENDING], status, reason=reason, reviewed_by=admin_id,
                      reviewed_at=utcnow()):
        refuse(KycSubmission, submission_id, "KYC submission", "decided again")
    db.session.refresh(submission)
    user = db.session.get(User, submission.user_id)
    email, name, sid = user.email, user.name, submission.id
    approved = status == KycStatus.APPROVED
    after_commit(lambda: email_user(
        email, "Identity verified" if approved else "Identity verification declined", "kyc_decision",
        f"kyc-{sid}-{status.value}", name=name, approved=approved, reason=reason))
    commit()
    return submission


def approve_kyc(submission_id: int, admin_id: int) -> KycSubmission:
    return _decide(submission_id, admin_id, KycStatus.APPROVED, None)


def reject_kyc(submission_id: int, admin_id: int, reason: str) -> KycSubmission:
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("Give the user a reason, so they can fix their details.")
    if len(reason) > 500:
        raise DomainError("Keep the reason under 500 characters.")
    return _decide(submission_id, admin_id, KycStatus.REJECTED, reason)
