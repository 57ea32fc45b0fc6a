"""Bank details: IBAN and BIC validation (by schwifty: the IBAN registry's lengths and
structures, the checksums and the BIC directory's countries), each error in words a user
can act on, and the masked IBAN shown everywhere instead of the real one."""

from __future__ import annotations

import re

from schwifty import BIC, IBAN, registry
from schwifty.exceptions import InvalidChecksumDigits, InvalidCountryCode, InvalidLength, SchwiftyException

from ..errors import DomainError


class InvalidIban(DomainError):
    field = "iban"  # shown next to the bank form's IBAN field


class InvalidBic(DomainError):
    field = "bic"


def normalise_iban(raw: str) -> str:
    return re.sub(r"[\s-]", "", raw or "").upper()


def validate_iban(raw: str, *, field: str = "IBAN") -> str:
    """The IBAN without spaces, upper case, payable by SEPA transfer; InvalidIban with a
    readable reason otherwise."""
    iban = normalise_iban(raw)
    if not iban:
        raise InvalidIban(f"Enter your {field}.")
    if not re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]+", iban):
        raise InvalidIban(f"An {field} starts with a country code and two check digits, followed by letters and digits.")
    country = iban[:2]
    try:
        spec = registry.get_iban_spec(country)
    except InvalidCountryCode:
        raise InvalidIban(f"IBANs from {country} are not supported.") from None
    if len(iban) != spec.iban_length:
        raise InvalidIban(f"A {country} IBAN has {spec.iban_length} characters; this one has {len(iban)}.")
    try:
        parsed = IBAN(iban)
    except InvalidChecksumDigits:
        raise InvalidIban(f"This {field}'s check digits are wrong: check it for typing mistakes.") from None
    except (InvalidLength, SchwiftyException):
        raise InvalidIban(f"This is not a valid {country} {field}: check it for typing mistakes.") from None
    if not parsed.in_sepa_zone:
        raise InvalidIban("Withdrawals are paid by SEPA transfer: use an account in the SEPA area.")
    return parsed.compact


def validate_bic(raw: str) -> str:
    bic = re.sub(r"\s", "", raw or "").upper()
    if not bic:
        raise InvalidBic("Enter the BIC (SWIFT code).")
    if not re.fullmatch(r"[A-Z0-9]{8}([A-Z0-9]{3})?", bic):
        raise InvalidBic("A BIC has 8 or 11 letters and digits, e.g. COBADEFFXXX.")
    try:
        return str(BIC(bic))
    except SchwiftyException:
        raise InvalidBic(f"{bic} is not a valid BIC: check the country code in letters 5-6.") from None


def mask_iban(iban: str) -> str:
    """DE89370400440532013000 -> DE89 **** **** **** 3000."""
    iban = normalise_iban(iban)
    hidden = max(1, (len(iban) - 8) // 4)
    return " ".join([iban[:4], *(["****"] * hidden), iban[-4:]])
