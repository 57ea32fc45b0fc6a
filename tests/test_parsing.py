"""Shared input: dates as YYYY-MM-DD, day ranges inclusive at both ends, money amounts."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from edutradex.errors import DomainError
from edutradex.parsing import parse_iso_date, parse_money, within_days


def test_dates_parse_or_say_what_is_expected():
    assert parse_iso_date(" 2026-11-22 ", "From") == date(2026, 11, 22)
    assert parse_iso_date("", "From") is None and parse_iso_date(None, "From") is None
    for bad in ("yesterday", "22/11/2026", "2026-13-01", "2026-11-22T10:00"):
        with pytest.raises(DomainError, match="From: enter a date as YYYY-MM-DD"):
            parse_iso_date(bad, "From")


def test_day_range_includes_the_whole_last_day_and_nothing_after():
    class Column:
        """Stands in for a SQL column: records each comparison as a predicate."""

        def __ge__(self, other):
            return lambda value: value >= other

        def __lt__(self, other):
            return lambda value: value < other

    conditions = within_days(Column(), date(2026, 11, 20), date(2026, 11, 22))

    def inside(moment):
        return all(condition(moment) for condition in conditions)

    assert inside(datetime(2026, 11, 20, 0, 0, tzinfo=UTC))
    assert inside(datetime(2026, 11, 22, 23, 59, 59, 999999, tzinfo=UTC))
    assert not inside(datetime(2026, 11, 19, 23, 59, 59, tzinfo=UTC))
    assert not inside(datetime(2026, 11, 23, 0, 0, tzinfo=UTC))
    assert within_days(Column(), None, None) == []


@pytest.mark.parametrize(("raw", "message"), [
    ("", "Fee: enter an amount."), (None, "Fee: enter an amount."), ("-0.01", "Fee: must not be negative."),
    ("NaN", "Fee: enter the amount as a plain number"), ("Infinity", "Fee: enter the amount as a plain number"),
    ("1e3", "Fee: enter the amount as a plain number"), (2.5, "Fee: enter the amount as a plain number"),
    (True, "Fee: enter the amount as a plain number"), ("12,50", "Fee: '12,50' is not a number."),
    ("1000000000", "Fee: that amount is far too large"), ("9.999", "Fee: use at most 2 decimal places (cents)."),
])
def test_money_refuses_what_is_not_an_exact_amount_of_cents(raw, message):
    with pytest.raises(DomainError) as raised:
        parse_money(raw, "Fee")
    assert raised.value.message.startswith(message)


def test_money_parses_exact_cents():
    assert parse_money(" 25 ", "Fee") == Decimal("25.00")
    assert parse_money(Decimal("0.10"), "Fee") == Decimal("0.10") and parse_money(7, "Fee") == Decimal("7.00")
    assert parse_money("0", "Fee") == Decimal("0.00")
    with pytest.raises(DomainError, match="must be more than zero"):
        parse_money("0.00", "Capital", allow_zero=False)
    with pytest.raises(DomainError, match="far too large"):
        parse_money("100.00", "Fee", limit=Decimal("100"))
