"""Encryption at rest for identity documents and bank details (Fernet: AES-128-CBC +
HMAC-SHA256). KYC_ENCRYPTION_KEY holds one or more keys, comma-separated, newest first:
data is encrypted with the first and any of them decrypts, so keys can be rotated."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import unicodedata

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import Flask, current_app

log = logging.getLogger(__name__)


def build_cipher(app: Flask) -> MultiFernet:
    configured = app.config.get("KYC_ENCRYPTION_KEY")
    if configured:
        keys = [key.strip() for key in configured.split(",") if key.strip()]
        try:
            return MultiFernet([Fernet(key) for key in keys])
        except ValueError:
            raise RuntimeError("KYC_ENCRYPTION_KEY must be Fernet keys (32 url-safe base64-encoded bytes).") from None
    if app.config.get("ENV_NAME") == "production":
        raise RuntimeError("KYC_ENCRYPTION_KEY is required in production.")
    # Development and tests: a key derived from SECRET_KEY, so the embedded default needs
    # no extra setting. Changing SECRET_KEY makes stored KYC data unreadable.
    digest = hashlib.sha256(b"edutradex-kyc:" + app.config["SECRET_KEY"].encode()).digest()
    log.info("KYC_ENCRYPTION_KEY not set: using a key derived from SECRET_KEY (development only)")
    return MultiFernet([Fernet(base64.urlsafe_b64encode(digest))])


def _cipher() -> MultiFernet:
    return current_app.extensions["wallet_cipher"]


def encrypt_text(value: str) -> str:
    return _cipher().encrypt(value.encode()).decode()


def decrypt_text(token: str) -> str:
    try:
        return _cipher().decrypt(token.encode()).decode()
    except InvalidToken:
        raise RuntimeError("Stored data cannot be decrypted with the configured KYC_ENCRYPTION_KEY.") from None


def encrypt_json(data: dict) -> str:
    return encrypt_text(json.dumps(data, sort_keys=True))


def decrypt_json(token: str) -> dict:
    return json.loads(decrypt_text(token))


def _fingerprint_key() -> bytes:
    configured = current_app.config.get("IDENTITY_FINGERPRINT_KEY")
    if configured:
        return configured.encode()
    # Like the development KYC key: derived from SECRET_KEY, under its own label.
    return hashlib.sha256(b"edutradex-identity-fingerprint:" + current_app.config["SECRET_KEY"].encode()).digest()


def _keyed_hash(text: str) -> str:
    return hmac.new(_fingerprint_key(), text.encode(), hashlib.sha256).hexdigest()


def _plain(text: str) -> str:
    """Case, accents, punctuation and spacing do not make another person ("José  O'Neil" = "jose oneil")."""
    letters = unicodedata.normalize("NFKD", text).casefold()
    kept = "".join(ch for ch in letters if ch.isalnum() or ch.isspace())
    return " ".join(kept.split())


def identity_fingerprints(country: str, id_number: str, legal_name: str, date_of_birth: str) -> tuple[str, str]:
    """(document, person): keyed hashes (HMAC-SHA256, IDENTITY_FINGERPRINT_KEY) of the ID
    document (country + number) and of the person (name + date of birth). Equal details give
    equal fingerprints, so accounts of one person are found without decrypting anyone's
    details; without the key a fingerprint reveals nothing."""
    document = _keyed_hash(f"document|{country.upper()}|{''.join(ch for ch in id_number.upper() if ch.isalnum())}")
    person = _keyed_hash(f"person|{_plain(legal_name)}|{date_of_birth}")
    return document, person
