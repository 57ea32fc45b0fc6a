"""Parsing what an admin types that is not money (amounts go through edutradex.parsing):
reasons, notes and the one-time key of a form."""

from __future__ import annotations

import re
import uuid

from ...errors import DomainError


class InputError(DomainError):
    status_code = 422


def parse_form_key(raw: str | None) -> str:
    """The one-time key a form was rendered with (see ``new_form_key``)."""
    text = (raw or "").strip()
    if not re.fullmatch(r"[0-9a-f]{32}", text):
        raise InputError("This form is out of date: reload the page and try again.")
    return text


def new_form_key() -> str:
    return uuid.uuid4().hex


def parse_reason(raw: str | None, label: str = "Reason", *, max_len: int = 500) -> str:
    text = (raw or "").strip()
    if len(text) < 3:
        raise InputError(f"{label}: give a reason (at least 3 characters).")
    if len(text) > max_len:
        raise InputError(f"{label}: at most {max_len} characters.")
    return text


def parse_note(raw: str | None, *, max_len: int = 500) -> str | None:
    """An optional note for the audit log."""
    text = (raw or "").strip()
    if len(text) > max_len:
        raise InputError(f"Note: at most {max_len} characters.")
    return text or None
