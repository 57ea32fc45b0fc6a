"""Shared input parsing: dates as YYYY-MM-DD, day ranges inclusive at both ends, the one
money parser and the one page parser, and a property test that throws arbitrary strings at
every money and page input through the real views."""

import os
import re
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from edutradex.errors import DomainError
from edutradex.extensions import db
from edutradex.parsing import MAX_PAGE, parse_decimal, parse_iso_date, parse_page, within_days
from tests.factories import make_admin, make_user
from tests.support.web import AuthActions, csrf_token


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


# ---- the one money parser and the one page parser ---------------------------------------

def test_money_is_plain_decimal_notation_within_the_callers_bounds():
    def amount(raw, **rules):
        return parse_decimal(raw, "Amount", places=rules.pop("places", 2), **rules)

    assert amount(" 25.5 ") == Decimal("25.50") and amount(".5") == Decimal("0.50") and amount("+3.") == Decimal("3.00")
    assert amount("1.2300000", places=2) == Decimal("1.23") and amount(Decimal("1E+2")) == Decimal("100.00")
    assert str(amount("-0")) == "0.00"
    for raw, message in [("", "Amount: enter a number, e.g. 10.00."), ("1e3", "enter a number"), ("²", "enter a number"),
                         ("١٢", "enter a number"), ("NaN", "enter a number"), ("-Infinity", "enter a number"),
                         ("0x10", "enter a number"), ("1,000", "enter a number"), (".", "enter a number"),
                         ("1.001", "Amount: use at most 2 decimal places."),
                         ("1" * 29, "Amount: that number is far too large."), ("9" * 100, "enter a number")]:
        with pytest.raises(DomainError, match=re.escape(message)):
            amount(raw)
    with pytest.raises(DomainError, match="Amount: must be at most 1000000000."):
        amount("1" * 29, maximum=Decimal("1000000000"))
    with pytest.raises(DomainError, match="Amount: must be at least -5."):
        amount("-" + "1" * 29, minimum=Decimal(-5), maximum=Decimal(5))
    with pytest.raises(DomainError, match="Amount: must be more than 0."):
        amount("0", minimum=Decimal(0), above_minimum=True)
    with pytest.raises(DomainError, match="Amount: must be at least -1."):
        amount("-1.5", minimum=Decimal(-1))
    with pytest.raises(DomainError, match="Amount: must not be zero."):
        amount("0.00", nonzero=True)
    with pytest.raises(DomainError, match="Amount: enter a whole number."):
        amount("1.5", places=0)
    with pytest.raises(DomainError, match="exact decimal"):
        amount(1.5)


def test_page_numbers_are_forgiving_and_bounded():
    assert [parse_page(raw) for raw in (None, "", "3", " 3 ", "0", "-2", "abc", "²", "١٢", "3.0")] == [1, 1, 3, 3, 1, 1, 1,
                                                                                                        1, 1, 1]
    assert parse_page("99999999999999999999999999") == parse_page("1000001") == MAX_PAGE


EDGE_NUMBERS = ["", " ", "0", "-0", "0.00", "-1", "1e3", "1E-2", "NaN", "sNaN", "-Infinity", "²", "١٢", "0x1F", "1_000",
                "1,5", "1" * 29, "9" * 16 + ".99", "1" * 5000, "0." + "0" * 40 + "1", "12.345", ".", "+", "+.5", "\x00",
                "10\n", "５"]
numbers = st.one_of(
    st.sampled_from(EDGE_NUMBERS),
    st.text(max_size=40),
    st.from_regex(r"\A[+-]?[0-9]{0,32}(\.[0-9]{0,12})?\Z"),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
)
pages = st.one_of(st.sampled_from(["", "0", "-1", "²", "１", "99999999999999999999999999999", "1e3", "2"]),
                  st.text(max_size=30), st.integers().map(str))
PROPERTY = settings(max_examples=int(os.environ.get("PARSING_EXAMPLES", "40")), deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
WATCHED_TABLES = ("users", "wallets", "ledger_entries", "trades", "deposits", "withdrawals", "admin_audit_entries",
                  "settings", "markets", "platform_accounts")


def snapshot(app) -> dict:
    with app.app_context():
        state = {name: sorted(map(tuple, db.session.execute(db.metadata.tables[name].select()).all()), key=repr)
                 for name in WATCHED_TABLES}
        db.session.remove()
        return state


def assert_refused_or_done(app, before, response, what):
    status = response.status_code
    assert status < 500, (what, status)
    if status >= 400:
        body = response.get_data(as_text=True)
        text = re.sub(r"<[^>]+>", " ", body)
        assert re.search(r"[A-Za-z]{3}", text), (what, status, body[:200])  # a message a person can read
        assert snapshot(app) == before, (what, status, "a refused request changed something")


@pytest.fixture
def world(app):
    """An admin and a verified, funded trader, each with their own signed-in client; a
    market with a live quote."""
    from edutradex.wallet.service import adjust_credits
    from tests.binary.conftest import make_market, tick_and_quote
    from tests.wallet.helpers import verified_user_with_bank

    with app.app_context():
        make_market("OTC_EUR_USD")
        tick_and_quote("OTC_EUR_USD", "1.10000")
        admin = make_admin("boss@example.com")
        trader = make_user("joe@example.com")
        verified_user_with_bank(trader.id, admin.id)
        adjust_credits(trader.id, Decimal("1000.00"), "Test funds", admin.id)
        ids = {"admin": admin.id, "trader": trader.id}
    clients = {}
    for role, email in (("admin", "boss@example.com"), ("trader", "joe@example.com")):
        clients[role] = app.test_client()
        AuthActions(clients[role]).login(email=email)
    return ids, clients


def post(client, path, data, page="/"):
    headers = {"HX-Request": "true", "X-CSRFToken": csrf_token(client, page)}
    return client.post(path, data=data, headers=headers)


@PROPERTY
@given(raw=numbers)
@example(raw="1" * 29)  # a 500 from the admin's credit adjustment before the one parser
@example(raw="9" * 16 + ".99")
@example(raw="1" * 5000)
@example(raw="²")
def test_every_money_input_answers_a_message_or_succeeds(app, world, raw):
    from tests.binary.conftest import tick_and_quote

    ids, clients = world
    admin, trader = clients["admin"], clients["trader"]
    with app.app_context():
        tick_and_quote("OTC_EUR_USD", "1.10000")  # a live price, so a valid stake can trade
    key = uuid.uuid4().hex
    inputs = [
        (trader, "/trade/place", {"symbol": "OTC_EUR_USD", "direction": "UP", "stake": raw, "duration": "60",
                                  "idempotency_key": key}),
        (trader, "/wallet/deposits", {"amount": raw}),
        (trader, "/wallet/withdrawals", {"amount": raw}),
        (admin, f"/admin/users/{ids['trader']}/credits", {"amount": raw, "reason": "Property test", "form_key": key}),
        (admin, "/admin/settings/default_demo_balance", {"value": raw}),
        (admin, "/admin/settings/default_payout_percent", {"value": raw}),
    ] + [(admin, "/admin/markets/OTC_EUR_USD", {field: raw}) for field in
         ("payout_percent", "min_stake", "max_stake", "trend_bias", "spread", "initial_price")]
    for client, path, data in inputs:
        before = snapshot(app)
        assert_refused_or_done(app, before, post(client, path, data), (path, data))


PAGED = {"admin": ["/admin/users", "/admin/kyc", "/admin/withdrawals", "/admin/audit", "/admin/markets"],
         "trader": ["/wallet", "/wallet/history", "/history"]}


@PROPERTY
@given(raw=pages)
@example(raw="²")  # int("²") raised: a 500 on every admin list before the one page parser
@example(raw="99999999999999999999999999999")
def test_every_page_number_answers_a_page(app, world, raw):
    _, clients = world
    for role, paths in PAGED.items():
        for path in paths:
            response = clients[role].get(path, query_string={"page": raw}, headers={"HX-Request": "true"})
            assert response.status_code < 400, (path, raw, response.status_code)
