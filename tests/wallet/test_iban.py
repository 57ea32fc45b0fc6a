import pytest

from edutradex.wallet.iban import InvalidIban, mask_iban, validate_iban


@pytest.mark.parametrize("raw, clean", [
    ("DE89 3704 0044 0532 0130 00", "DE89370400440532013000"),
    ("gb82west12345698765432", "GB82WEST12345698765432"),
    ("FR14 2004 1010 0505 0001 3M02 606", "FR1420041010050500013M02606"),
    ("NL91ABNA0417164300", "NL91ABNA0417164300"),
    ("BE68-5390-0754-7034", "BE68539007547034"),
])
def test_valid_ibans_are_normalised(raw, clean):
    assert validate_iban(raw) == clean


@pytest.mark.parametrize("raw", ["DE89370400440532013001", "GB82WEST12345698765431", "NL91ABNA041716430",
                                 "DE89 3704 0044 0532 0130 0O", "1234", "DE00370400440532013000"])
def test_invalid_ibans_are_refused(raw):
    with pytest.raises(InvalidIban):
        validate_iban(raw)


def test_masking_keeps_only_the_country_check_digits_and_last_four():
    assert mask_iban("DE89370400440532013000") == "DE89 **** **** **** 3000"
    assert mask_iban("NL91ABNA0417164300") == "NL91 **** **** 4300"
    assert "0532" not in mask_iban("FR1420041010050500013M02606")
