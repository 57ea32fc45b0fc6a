"""The lobby's filters (entry fee, kind, market type, seats left): done in SQL, kept across
tabs and pages, and bad values reported next to their field with a 400 and no result."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import event

from edutradex.competitions import pages, service
from edutradex.extensions import db
from edutradex.market.models import Market
from tests.competitions.conftest import fund, open_competition
from tests.factories import make_user


@pytest.fixture
def lobby(app, auth):
    """Joe, logged in, and four upcoming competitions that differ in one filter each."""
    auth.register()
    with app.app_context():
        db.session.add(Market(symbol="OTC_EUR_USD", name="EUR/USD OTC", market_type="OTC"))
        db.session.commit()
        names = {
            "free": open_competition(name="Free OTC sprint", entry_fee="0", allowed_markets="OTC").name,
            "paid": open_competition(name="Paid synthetic cup", entry_fee="25.00", allowed_markets="SYNTHETIC").name,
            "cheap": open_competition(name="Cheap symbol cup", entry_fee="5.00", allowed_markets="OTC_EUR_USD").name,
            "rise": open_competition(name="Rise fall open", entry_fee="10.00", kind="RISE_FALL").name,
        }
        full = open_competition(name="Full house", entry_fee="0", max_participants=1, min_participants=1)
        other = make_user().id
        fund(other, "10.00")
        service.join_competition(full.id, other)
        names["full"] = full.name
        return names


def shown(client, query: str, status: int = 200) -> set[str]:
    response = client.get(f"/competitions?{query}")
    assert response.status_code == status
    page = response.get_data(as_text=True)
    return {name for name in ("Free OTC sprint", "Paid synthetic cup", "Cheap symbol cup", "Rise fall open",
                              "Full house") if name in page}


def test_without_filters_every_competition_is_listed(client, lobby):
    assert shown(client, "") == set(lobby.values())


def test_free_and_paid(client, lobby):
    assert shown(client, "fee=free") == {lobby["free"], lobby["full"]}
    assert shown(client, "fee=paid") == {lobby["paid"], lobby["cheap"], lobby["rise"]}


def test_max_fee(client, lobby):
    assert shown(client, "max_fee=10") == {lobby["free"], lobby["full"], lobby["cheap"], lobby["rise"]}
    assert shown(client, "fee=paid&max_fee=5.00") == {lobby["cheap"]}


def test_kind(client, lobby):
    assert shown(client, "kind=RISE_FALL") == {lobby["rise"]}
    assert lobby["rise"] not in shown(client, "kind=CFD")


def test_market_type_counts_every_market_the_type_itself_and_its_symbols(client, lobby):
    # Empty allowed markets = every market; OTC_EUR_USD is an OTC symbol.
    assert shown(client, "market=OTC") == {lobby["free"], lobby["cheap"], lobby["rise"], lobby["full"]}
    assert shown(client, "market=SYNTHETIC") == {lobby["paid"], lobby["rise"], lobby["full"]}


def test_seats_left(client, lobby):
    assert lobby["full"] not in shown(client, "seats=1")
    assert len(shown(client, "seats=1")) == 4


@pytest.mark.parametrize("query, field, message", [
    ("max_fee=-1", "max_fee", "Max fee"),
    ("max_fee=abc", "max_fee", "Max fee: enter a number"),
    ("max_fee=NaN", "max_fee", "Max fee: enter a number"),
    ("max_fee=1e9", "max_fee", "Max fee: enter a number"),
    ("max_fee=1.234", "max_fee", "Max fee"),
    ("kind=FUTURES", "kind", "Kind: choose"),
    ("market=CRYPTO", "market", "Market: choose"),
    ("fee=cheap", "fee", "Entry fee: choose"),
    ("seats=yes", "seats", "Seats left"),
])
def test_bad_filters_are_reported_next_to_the_field_with_a_400_and_no_result(client, lobby, query, field, message):
    response = client.get(f"/competitions?{query}")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert f'data-testid="{field}-error">{message}' in page
    assert re.search(rf'name="{field}"[^>]*aria-invalid="true"', page)
    assert shown(client, query, 400) == set()
    assert "Fix the filter above" in page


def test_filters_are_kept_across_tabs_and_pages(app, client, lobby):
    with app.app_context():
        for number in range(pages.PAGE_SIZE + 1):
            open_competition(name=f"Free extra {number}", entry_fee="0")
    page = client.get("/competitions?fee=free&market=OTC&seats=1").get_data(as_text=True)
    assert "Page 1 of 2" in page
    next_link = re.search(r'href="([^"]*page=2[^"]*)"', page).group(1).replace("&amp;", "&")
    assert all(part in next_link for part in ("fee=free", "market=OTC", "seats=1", "tab=upcoming"))
    live_link = re.search(r'href="([^"]*)"[^>]*data-testid="tab-live"', page).group(1).replace("&amp;", "&")
    assert all(part in live_link for part in ("tab=live", "fee=free", "market=OTC", "seats=1"))
    # The form shows the filters back.
    assert 'value="free" selected' in page and 'value="1" checked' in page


def test_filtering_is_one_query_for_the_list(app, lobby):
    """The filters are SQL: one query for the page of competitions and one for the count,
    however many competitions match."""
    with app.test_request_context():
        statements = []
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            page = pages.lobby("upcoming", 1, pages.parse_filters({"fee": "paid", "market": "SYNTHETIC", "seats": "1"}))
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        assert [c.name for c in page.items] == [lobby["paid"], lobby["rise"]]
        assert len(statements) <= 2


def test_the_market_filter_on_both_databases(db_app):
    """allowed_markets is JSON: the text match must hold on PostgreSQL as on SQLite."""
    with db_app.app_context():
        db.session.add(Market(symbol="OTC_GBP_USD", name="GBP/USD OTC", market_type="OTC"))
        db.session.commit()
        by_symbol = open_competition(name="By symbol", allowed_markets="OTC_GBP_USD, SYNTHETIC").id
        by_type = open_competition(name="By type", allowed_markets="FOREX").id
        every = open_competition(name="Every market").id

        def ids(market: str) -> set[int]:
            return {c.id for c in pages.lobby("upcoming", 1, pages.parse_filters({"market": market})).items}

        assert ids("OTC") == {by_symbol, every}
        assert ids("SYNTHETIC") == {by_symbol, every}
        assert ids("FOREX") == {by_type, every}
