"""Fixtures for the markets tests: a seeded catalogue and a feed driven by a fake clock."""

from __future__ import annotations

import pytest

from edutradex.extensions import db
from edutradex.market import quotes
from edutradex.market.feed import PriceFeed
from edutradex.market.service import seed_markets
from tests.support.quotes import fresh_quotes  # noqa: F401 - autouse: no quote outlives a test

T0 = 1_700_000_040_000  # a fixed server time (ms), 40 s into a minute


class FakeClock:
    def __init__(self, start_ms: int = T0):
        self.ms = start_ms

    def now_ms(self) -> int:
        return self.ms

    def monotonic(self) -> float:
        return self.ms / 1000

    def advance(self, ms: int) -> None:
        self.ms += ms


class FeedHarness:
    """A PriceFeed with a fake clock, recording the frames it emits."""

    def __init__(self, app, clock: FakeClock, seed: int = 7):
        self.app = app
        self.clock = clock
        self.frames: list[tuple[str, dict]] = []
        self.feed = PriceFeed(app, seed=seed, emit=lambda symbol, frame: self.frames.append((symbol, frame)),
                              clock_ms=clock.now_ms, monotonic=clock.monotonic, adapters=False)

    def run(self, passes: int, step_ms: int = 50) -> None:
        """Run `passes` loop passes `step_ms` apart (no real waiting)."""
        with self.app.app_context():
            for _ in range(passes):
                self.clock.advance(step_ms)
                self.feed.run_once()

    def flush(self) -> None:
        with self.app.app_context():
            self.feed.coalescer.flush()
            self.feed.writer.flush()


@pytest.fixture
def seeded(app):
    with app.app_context():
        seed_markets()
    return app


@pytest.fixture
def clock(monkeypatch):
    clock = FakeClock()
    # fresh_quote and the health check judge age against the server clock
    monkeypatch.setattr(quotes, "now_ms", clock.now_ms)
    return clock


@pytest.fixture
def harness(seeded, clock):
    return FeedHarness(seeded, clock)


def tick_count(app, symbol: str | None = None) -> int:
    from sqlalchemy import func, select

    from edutradex.market.models import Tick

    with app.app_context():
        query = select(func.count(Tick.id))
        if symbol:
            query = query.where(Tick.symbol == symbol)
        return db.session.scalar(query)




def check_tick_ids(app, clock: FakeClock) -> None:
    """The feed names each tick as it makes it: the quote carries the id the tick is stored
    under, and no id is ever handed out twice, not after a restart that lost the unflushed
    ticks, nor to a row added some other way."""
    from sqlalchemy import select

    from edutradex.market.models import Tick

    first = FeedHarness(app, clock)
    first.run(20)
    with app.app_context():
        quote = quotes.latest_quote("OTC_GOLD")
        assert quote.tick_id is not None
    first.flush()
    first.run(4)  # more ticks, never flushed: lost as in a crash
    with app.app_context():
        stored = db.session.get(Tick, quote.tick_id)
        assert (stored.symbol, stored.ts_ms, stored.mid, stored.bid, stored.ask) == \
               ("OTC_GOLD", quote.ts_ms, quote.mid, quote.bid, quote.ask)
        handed_out = quotes.latest_quote("OTC_GOLD").tick_id
        assert db.session.get(Tick, handed_out) is None
        elsewhere = Tick(symbol="OTHER", ts_ms=1, bid=1, ask=1, mid=1, source="test")
        db.session.add(elsewhere)
        db.session.commit()
        assert elsewhere.id > handed_out
        ids = list(db.session.scalars(select(Tick.id)))
        assert len(ids) == len(set(ids))
    second = FeedHarness(app, clock)  # a restarted feed
    second.run(20)
    second.flush()
    with app.app_context():
        assert quotes.latest_quote("OTC_GOLD").tick_id > elsewhere.id
        ids = list(db.session.scalars(select(Tick.id)))
        assert len(ids) == len(set(ids))
