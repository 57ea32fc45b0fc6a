"""IBAN validation (ISO 13616: country length + mod-97 checksum) and masking."""

from __future__ import annotations

import re

from ..errors import DomainError

# Lengths of the IBAN registry's countries (SWIFT IBAN registry).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
    "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}
_SHAPE = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$")


class InvalidIban(DomainError):
    field = "iban"


def normalise_iban(raw: str) -> str:
    return re.sub(r"[\s-]", "", raw or "").upper()


def validate_iban(raw: str) -> str:
    """The IBAN without spaces, upper case; InvalidIban with a readable reason otherwise."""
    iban = normalise_iban(raw)
    if not iban:
        raise InvalidIban("Enter your IBAN.")
    if not _SHAPE.match(iban):
        raise InvalidIban("An IBAN starts with a country code and two check digits, followed by letters and digits.")
    expected = IBAN_LENGTHS.get(iban[:2])
    if expected is None:
        raise InvalidIban(f"IBANs from {iban[:2]} are not supported.")
    if len(iban) != expected:
        raise InvalidIban(f"A {iban[:2]} IBAN has {expected} characters; this one has {len(iban)}.")
    rearranged = iban[4:] + iban[:4]
    if int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 != 1:
        raise InvalidIban("This IBAN's check digits are wrong: check it for typing mistakes.")
    return iban


def mask_iban(iban: str) -> str:
    """DE89370400440532013000 -> DE89 **** **** **** 3000."""
    iban = normalise_iban(iban)
    hidden = max(1, (len(iban) - 8) // 4)
    return " ".join([iban[:4], *(["****"] * hidden), iban[-4:]])
