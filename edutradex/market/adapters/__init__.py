"""Real price feeds for FOREX markets. An adapter keeps one WebSocket to its provider open,
subscribes to the active FOREX markets' provider symbols and hands each price to the feed
loop (the one authority), which stamps it with server time, records and publishes it.

Without an API key no adapter runs, so FOREX markets have no quote and show as unavailable:
a real symbol is never simulated. A connection that delivers no price for
FEED_STALE_AFTER_SECONDS is dropped and reopened with exponential backoff; meanwhile the
market's quote goes stale and trading on it is refused (quotes.fresh_quote)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .base import PriceSink, WebSocketAdapter
from .finnhub import FinnhubAdapter
from .twelvedata import TwelveDataAdapter

__all__ = ["FinnhubAdapter", "PriceSink", "TwelveDataAdapter", "WebSocketAdapter", "build_adapters"]


def build_adapters(config: Mapping, symbols: dict[str, str], sink: PriceSink,
                   history_sink: Callable | None = None) -> list[WebSocketAdapter]:
    """The adapter for the configured provider: Twelve Data when its key is set, else
    Finnhub, else none."""
    stale_after = float(config["FEED_STALE_AFTER_SECONDS"])
    if config.get("TWELVEDATA_API_KEY"):
        return [TwelveDataAdapter(config["TWELVEDATA_API_KEY"], config["TWELVEDATA_WS_URL"], config["TWELVEDATA_REST_URL"],
                                  symbols, sink, stale_after=stale_after, history_sink=history_sink)]
    if config.get("FINNHUB_API_KEY"):
        return [FinnhubAdapter(config["FINNHUB_API_KEY"], config["FINNHUB_WS_URL"], symbols, sink,
                               stale_after=stale_after, prefix=config.get("FINNHUB_SYMBOL_PREFIX", "OANDA:"))]
    return []
