"""Fixtures for rise/fall tests: markets, recorded ticks and the authority's quote."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import pytest

from edutradex.extensions import db
from edutradex.market import quotes
from edutradex.market.models import FeedAuthority, Market, Tick
from edutradex.market.quotes import Quote
from tests.support.quotes import fresh_quotes  # noqa: F401 - autouse: no quote outlives a test


def make_market(symbol: str = "OTC_EUR_USD", **fields) -> Market:
    values = dict(name=symbol.replace("_", " ").title(), market_type="OTC", active=True,
                  payout_percent=Decimal("80.00"), min_stake=Decimal("1.00"), max_stake=Decimal("1000.00"),
                  precision=5, spread=Decimal("0.00010"), initial_price=Decimal("1.10000"))
    values.update(fields)
    market = Market(symbol=symbol, **values)
    db.session.add(market)
    db.session.commit()
    return market


def add_tick(symbol: str, ts_ms: int, mid: str | Decimal, half_spread: str = "0.00005") -> Tick:
    """What the authority's flush does: store a tick and move the watermark up to it."""
    mid = Decimal(mid)
    tick = Tick(symbol=symbol, ts_ms=ts_ms, bid=mid - Decimal(half_spread), ask=mid + Decimal(half_spread), mid=mid,
                source="test")
    db.session.add(tick)
    db.session.commit()
    stored_through(ts_ms)
    return tick


def stored_through(ts_ms: int) -> None:
    """Move the tick store's watermark: every tick at or before `ts_ms` is stored."""
    row = db.session.get(FeedAuthority, 1)
    if row is None:
        row = FeedAuthority(id=1, epoch=0, clean=True)
        db.session.add(row)
    row.flushed_ms = ts_ms if row.flushed_ms is None else max(row.flushed_ms, ts_ms)
    db.session.commit()


def publish(symbol: str, mid: str | Decimal, ts_ms: int | None = None, tick_id: int | None = None,
            half_spread: str = "0.00005") -> Quote:
    mid = Decimal(mid)
    quote = Quote(symbol=symbol, bid=mid - Decimal(half_spread), ask=mid + Decimal(half_spread), mid=mid,
                  tick_id=tick_id, ts_ms=quotes.now_ms() if ts_ms is None else ts_ms, source="test")
    quotes.publish_quote(quote)
    return quote


def tick_and_quote(symbol: str, mid: str | Decimal, ts_ms: int | None = None) -> Tick:
    """What the authority does: record a tick and publish it as the latest quote."""
    ts_ms = quotes.now_ms() if ts_ms is None else ts_ms
    tick = add_tick(symbol, ts_ms, mid)
    publish(symbol, mid, ts_ms, tick.id)
    return tick


@contextmanager
def live_quote(app, symbol: str, mid: str | Decimal = "1.10000", every_ms: int = 100) -> Iterator[None]:
    """Keep publishing a fresh quote while the block runs, as the running authority does:
    a long test step would otherwise outlive ENTRY_MAX_QUOTE_AGE_MS and be refused."""
    stop = threading.Event()

    def feed() -> None:
        with app.app_context():
            while not stop.wait(every_ms / 1000):
                publish(symbol, mid)

    with app.app_context():
        publish(symbol, mid)
    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


class SettlementClock:
    """The settler's view of "now", moved by the test (placement keeps the real clock)."""

    def __init__(self):
        self.ms: int | None = None

    def __call__(self) -> int:
        return quotes.now_ms() if self.ms is None else self.ms


@pytest.fixture
def clock(monkeypatch):
    from edutradex.binary import settlement

    fake = SettlementClock()
    monkeypatch.setattr(settlement, "now_ms", fake)
    return fake


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_app(request):
    """The same test on the embedded default (SQLite) and on PostgreSQL."""
    return request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")


def prepare_live(server):
    """The live server's database built by `flask db upgrade` and seeded, plus an app bound
    to the same file for the test's own checks."""
    from config import TestingConfig
    from edutradex import create_app

    server.prepare()
    return create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=server.env["DATABASE_URL"])


@pytest.fixture
def binary_live(tmp_path):
    """The app as a real process (wsgi.py, embedded default: the feed and the settlement
    clock run inside it) plus an app bound to the same database for checking."""
    from tests.support.live import LiveServer

    server = LiveServer(tmp_path / "live")
    checker = prepare_live(server)
    server.start()
    yield server, checker
    server.stop()
    with checker.app_context():
        db.engine.dispose()
