import pytest

from edutradex.wallet.bank import InvalidBic, InvalidIban, mask_iban, validate_bic, validate_iban


@pytest.mark.parametrize("raw, clean", [
    ("DE89 3704 0044 0532 0130 00", "DE89370400440532013000"),
    ("gb82west12345698765432", "GB82WEST12345698765432"),
    ("FR14 2004 1010 0505 0001 3M02 606", "FR1420041010050500013M02606"),
    ("NL91ABNA0417164300", "NL91ABNA0417164300"),
    ("BE68-5390-0754-7034", "BE68539007547034"),
])
def test_valid_ibans_are_normalised(raw, clean):
    assert validate_iban(raw) == clean


@pytest.mark.parametrize("raw, message", [
    ("DE89370400440532013001", "check digits are wrong"),
    ("GB82WEST12345698765431", "check digits are wrong"),
    ("NL91ABNA041716430", "A NL IBAN has 18 characters; this one has 17"),
    ("DE89 3704 0044 0532 0130 0O", "not a valid DE IBAN"),  # letter O where the registry wants a digit
    ("1234", "starts with a country code"),
    ("XX89370400440532013000", "IBANs from XX are not supported"),
    ("SA0380000000608010167519", "SEPA"),  # a real IBAN, outside the SEPA area
    ("", "Enter your IBAN"),
])
def test_invalid_ibans_are_refused_with_the_reason(raw, message):
    with pytest.raises(InvalidIban, match=message):
        validate_iban(raw)


@pytest.mark.parametrize("raw, clean", [("COBADEFFXXX", "COBADEFFXXX"), ("cobadeff", "COBADEFF"),
                                        ("ABNA NL2A", "ABNANL2A")])
def test_valid_bics(raw, clean):
    assert validate_bic(raw) == clean


@pytest.mark.parametrize("raw, message", [("", "Enter the BIC"), ("COBADE", "8 or 11"), ("COBAXXFFXXX", "country code"),
                                          ("COBA-DEFF", "8 or 11")])
def test_invalid_bics_are_refused_with_the_reason(raw, message):
    with pytest.raises(InvalidBic, match=message):
        validate_bic(raw)


def test_masking_keeps_only_the_country_check_digits_and_last_four():
    assert mask_iban("DE89370400440532013000") == "DE89 **** **** **** 3000"
    assert mask_iban("NL91ABNA0417164300") == "NL91 **** **** 4300"
    assert "0532" not in mask_iban("FR1420041010050500013M02606")
