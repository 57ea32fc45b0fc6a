"""The watchlist service on both databases, and the limit under concurrent adds (PostgreSQL)."""

from __future__ import annotations

import threading

import pytest

from edutradex.errors import DomainError
from edutradex.extensions import db
from edutradex.market.service import seed_markets
from edutradex.watchlist import service
from tests.factories import make_user


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_app(request):
    app = request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")
    with app.app_context():
        seed_markets()
    return app


def test_add_move_remove(db_app):
    with db_app.app_context():
        user_id = make_user().id
        ids = [service.add_symbol(user_id, s).id for s in ("OTC_GOLD", "VOLATILITY_10", "VOLATILITY_50")]
        service.move_entry(user_id, ids[2], "up")
        service.move_entry(user_id, ids[2], "up")
        assert service.symbols_of(user_id) == ["VOLATILITY_50", "OTC_GOLD", "VOLATILITY_10"]
        service.remove_entry(user_id, ids[0])
        assert service.symbols_of(user_id) == ["VOLATILITY_50", "VOLATILITY_10"]
        rows = service.watch_rows(user_id)
        assert [(r.symbol, r.first, r.last) for r in rows] == [("VOLATILITY_50", True, False),
                                                                ("VOLATILITY_10", False, True)]


@pytest.mark.postgres
def test_concurrent_adds_cannot_pass_the_limit(pg_app, monkeypatch):
    monkeypatch.setattr(service, "MAX_ENTRIES", 2)
    with pg_app.app_context():
        seed_markets()
        user_id = make_user().id
        service.add_symbol(user_id, "OTC_GOLD")
        symbols = [m.symbol for m in service.addable_markets(user_id) if m.market_type != "FOREX"]
        db.session.remove()
    start = threading.Barrier(len(symbols))
    outcomes = []

    def add(symbol):
        with pg_app.app_context():
            start.wait()
            try:
                service.add_symbol(user_id, symbol)
                outcomes.append("added")
            except DomainError as err:
                outcomes.append(err.message)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=add, args=(s,)) for s in symbols]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(symbols) >= 6 and len(outcomes) == len(symbols) and outcomes.count("added") == 1
    with pg_app.app_context():
        assert len(service.symbols_of(user_id)) == 2
