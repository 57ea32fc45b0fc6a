"""The real-feed adapters against local fake providers (never the internet)."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest

from edutradex.market import quotes
from edutradex.market.adapters import FinnhubAdapter, TwelveDataAdapter, build_adapters
from tests.support.waiting import wait_for

from .conftest import FeedHarness
from .fake_providers import FakeFinnhub, FakeTwelveData

FOREX = {"EUR/USD": "EUR_USD", "GBP/USD": "GBP_USD", "USD/JPY": "USD_JPY", "AUD/USD": "AUD_USD",
         "USD/CHF": "USD_CHF"}




class Running:
    """An adapter's run loop in a thread, stopped on exit."""

    def __init__(self, adapter):
        self.adapter = adapter
        self.stopped = False
        self.thread = threading.Thread(target=adapter.run, args=(lambda: self.stopped,), daemon=True)

    def __enter__(self):
        self.thread.start()
        return self.adapter

    def __exit__(self, *exc):
        self.stopped = True
        self.thread.join(5)


@pytest.fixture
def twelvedata():
    server = FakeTwelveData().start()
    yield server
    server.stop()


@pytest.fixture
def finnhub():
    server = FakeFinnhub().start()
    yield server
    server.stop()


def collector():
    prices = []

    def sink(symbol, price, bid=None, ask=None, source="FEED"):
        prices.append((symbol, price, bid, ask, source))

    return prices, sink


def test_no_keys_no_adapters():
    config = {"FEED_STALE_AFTER_SECONDS": 10, "TWELVEDATA_API_KEY": None, "FINNHUB_API_KEY": None}
    assert build_adapters(config, FOREX, lambda *a: None) == []
    config.update(FINNHUB_API_KEY="k", FINNHUB_WS_URL="ws://x")
    assert isinstance(build_adapters(config, FOREX, lambda *a: None)[0], FinnhubAdapter)
    config.update(TWELVEDATA_API_KEY="k", TWELVEDATA_WS_URL="ws://x", TWELVEDATA_REST_URL="http://x")
    assert isinstance(build_adapters(config, FOREX, lambda *a: None)[0], TwelveDataAdapter)


def test_twelvedata_subscribes_and_delivers_exact_prices(twelvedata):
    prices, sink = collector()
    adapter = TwelveDataAdapter("test-key", twelvedata.ws_url, twelvedata.rest_url, FOREX, sink, stale_after=5)
    with Running(adapter):
        wait_for(lambda: twelvedata.subscribed() == set(FOREX), message="the subscription")
        twelvedata.price("EUR/USD", 1.08512)
        twelvedata.price("USD/JPY", 149.875, bid=149.87, ask=149.88)
        twelvedata.price("BTC/USD", 40000.5)  # not ours: ignored
        wait_for(lambda: len(prices) == 2, message="two prices")
    assert prices[0] == ("EUR_USD", Decimal("1.08512"), None, None, "TWELVEDATA")
    assert prices[1] == ("USD_JPY", Decimal("149.875"), Decimal("149.87"), Decimal("149.88"), "TWELVEDATA")


def test_twelvedata_history(twelvedata):
    twelvedata.history["EUR/USD"] = [
        {"datetime": "2023-11-14 22:14:00", "open": "1.08500", "high": "1.08530", "low": "1.08490", "close": "1.08520"},
        {"datetime": "2023-11-14 22:13:00", "open": "1.08480", "high": "1.08510", "low": "1.08470", "close": "1.08500"},
    ]
    adapter = TwelveDataAdapter("test-key", twelvedata.ws_url, twelvedata.rest_url, FOREX, lambda *a: None,
                                stale_after=5)
    bars = adapter.history("EUR/USD")
    assert [b["start_s"] for b in bars] == [1700000000 - 20, 1700000040]
    assert bars[1]["high"] == Decimal("1.08530")
    wrong = TwelveDataAdapter("bad-key", twelvedata.ws_url, twelvedata.rest_url, FOREX, lambda *a: None, stale_after=5)
    with pytest.raises(ValueError, match="apikey"):
        wrong.history("EUR/USD")


def test_twelvedata_sends_heartbeats(twelvedata):
    adapter = TwelveDataAdapter("test-key", twelvedata.ws_url, twelvedata.rest_url, FOREX, lambda *a: None,
                                stale_after=30)
    adapter.heartbeat_every = 0.1
    with Running(adapter):
        wait_for(lambda: sum(1 for m in twelvedata.received if m.get("action") == "heartbeat") >= 2,
                 message="heartbeats")


def test_finnhub_subscribes_per_symbol_and_takes_the_last_trade(finnhub):
    prices, sink = collector()
    adapter = FinnhubAdapter("test-key", finnhub.ws_url, FOREX, sink, stale_after=5)
    with Running(adapter):
        wait_for(lambda: finnhub.subscribed() == {f"OANDA:{p.replace('/', '_')}" for p in FOREX},
                 message="the subscription")
        finnhub.ping()
        finnhub.trades(("OANDA:EUR_USD", 1.0851), ("OANDA:EUR_USD", 1.0852), ("OANDA:GBP_USD", 1.2651),
                       ("AAPL", 190.1))
        wait_for(lambda: len(prices) == 2, message="prices")
    assert sorted(prices) == [("EUR_USD", Decimal("1.0852"), None, None, "FINNHUB"),
                              ("GBP_USD", Decimal("1.2651"), None, None, "FINNHUB")]


def test_reconnects_with_backoff_after_the_provider_drops(finnhub):
    prices, sink = collector()
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        time.sleep(0.05)

    adapter = FinnhubAdapter("test-key", finnhub.ws_url, FOREX, sink, stale_after=5, sleep=sleep)
    with Running(adapter):
        wait_for(lambda: finnhub.connections == 1 and finnhub.subscribed(), message="first connection")
        finnhub.drop_all()
        wait_for(lambda: finnhub.connections == 2 and len(finnhub.clients) == 1, message="reconnection")
        finnhub.trades(("OANDA:USD_CHF", 0.8812))
        wait_for(lambda: prices, message="a price after reconnecting")
    assert sleeps and sleeps[0] >= 0.8 * adapter.min_backoff


def test_backoff_grows_and_is_capped():
    adapter = FinnhubAdapter("k", "ws://127.0.0.1:9", FOREX, lambda *a: None, stale_after=5, min_backoff=1,
                             max_backoff=30)
    delays = [adapter.backoff(attempt) for attempt in range(8)]
    assert delays[0] <= 1 and delays[3] > 6 and max(delays) <= 30


def test_unreachable_provider_is_retried_with_growing_backoff():
    sleeps = []
    adapter = FinnhubAdapter("k", "ws://127.0.0.1:9", FOREX, lambda *a: None, stale_after=5,
                             sleep=lambda s: sleeps.append(s))
    with Running(adapter):
        wait_for(lambda: len(sleeps) >= 4, message="retries")
    assert sleeps[3] > sleeps[0]


def test_a_quiet_provider_is_dropped_and_the_market_goes_stale(seeded, clock, finnhub):
    seeded.config.update(FINNHUB_API_KEY="test-key", FINNHUB_WS_URL=finnhub.ws_url, FEED_STALE_AFTER_SECONDS=0.5)
    harness = FeedHarness(seeded, clock)
    feed = harness.feed
    with seeded.app_context():
        feed.reload_markets()
    adapter = build_adapters(seeded.config, feed._provider_symbols(), feed.receive_price)[0]
    adapter.sleep = lambda s: time.sleep(0.05)
    with Running(adapter):
        wait_for(lambda: finnhub.subscribed(), message="subscription")
        finnhub.trades(("OANDA:EUR_USD", 1.08512))
        wait_for(lambda: feed.received, message="the price reaching the feed")
        harness.run(1)
        with seeded.app_context():
            quote = quotes.fresh_quote("EUR_USD")
            assert (quote.mid, quote.source) == (Decimal("1.08512"), "FINNHUB")
            assert quote.ask - quote.bid >= Decimal("0.00010")  # the configured spread around the price
        # the provider goes quiet: the adapter reconnects, the quote goes stale, trading is refused
        wait_for(lambda: finnhub.connections >= 2, message="a reconnect after silence")
        clock.advance(600)
        with seeded.app_context(), pytest.raises(quotes.MarketUnavailable, match="stale"):
            quotes.fresh_quote("EUR_USD", "EUR/USD")


def test_forex_prices_flow_through_the_feed_with_twelvedata_history(seeded, clock, twelvedata):
    twelvedata.history["EUR/USD"] = [{"datetime": "2023-11-14 22:12:00", "open": "1.085", "high": "1.086",
                                      "low": "1.084", "close": "1.0855"}]
    seeded.config.update(TWELVEDATA_API_KEY="test-key", TWELVEDATA_WS_URL=twelvedata.ws_url,
                         TWELVEDATA_REST_URL=twelvedata.rest_url)
    harness = FeedHarness(seeded, clock)
    feed = harness.feed
    with seeded.app_context():
        feed.reload_markets()
    adapter = build_adapters(seeded.config, feed._provider_symbols(), feed.receive_price, feed.store_history)[0]
    with Running(adapter):
        wait_for(lambda: twelvedata.subscribed() == set(FOREX), message="subscription")
        twelvedata.price("GBP/USD", 1.26533)
        wait_for(lambda: feed.received, message="a price")
        harness.run(1)
    harness.flush()
    with seeded.app_context():
        assert quotes.fresh_quote("GBP_USD").mid == Decimal("1.26533")
        assert "GBP_USD" not in feed.simulator.walks
        from edutradex.market import candles

        bars = candles.candles("EUR_USD", 60, 1_700_000_000 - 120, 1_700_000_000)
        assert [(b.start_s, b.close) for b in bars] == [(1_699_999_920, Decimal("1.0855"))]
