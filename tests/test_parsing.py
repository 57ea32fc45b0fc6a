"""Shared filter input: dates as YYYY-MM-DD, day ranges inclusive at both ends."""

from datetime import UTC, date, datetime

import pytest

from edutradex.errors import DomainError
from edutradex.parsing import parse_iso_date, within_days


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
