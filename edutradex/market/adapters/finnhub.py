"""Finnhub: WebSocket trades (wss://ws.finnhub.io?token=...).

Client -> server: {"type": "subscribe", "symbol": "OANDA:EUR_USD"} per symbol. Server ->
client: {"type": "trade", "data": [{"s": "OANDA:EUR_USD", "p": 1.0851, "t": 1700000000000,
"v": 0}, ...]}, {"type": "ping"} and {"type": "error", "msg": "..."}."""

from __future__ import annotations

import logging
import urllib.parse
from decimal import Decimal

from .base import PriceSink, WebSocketAdapter

log = logging.getLogger(__name__)


class FinnhubAdapter(WebSocketAdapter):
    source = "FINNHUB"

    def __init__(self, api_key: str, ws_url: str, symbols: dict[str, str], sink: PriceSink, *, stale_after: float,
                 prefix: str = "OANDA:", **kwargs):
        self.prefix = prefix
        super().__init__(symbols, sink, stale_after=stale_after, **kwargs)
        self.api_key = api_key
        self.ws_url = ws_url

    def to_provider(self, provider_symbol: str) -> str:
        """EUR/USD -> OANDA:EUR_USD"""
        return self.prefix + provider_symbol.replace("/", "_")

    @property
    def finnhub_symbols(self) -> dict[str, str]:
        return {self.to_provider(p): s for p, s in self.symbols.items()}

    def url(self) -> str:
        return f"{self.ws_url}?{urllib.parse.urlencode({'token': self.api_key})}"

    def subscribe_messages(self, provider_symbols: list[str]) -> list[dict]:
        return [{"type": "subscribe", "symbol": self.to_provider(p)} for p in provider_symbols]

    def handle(self, message) -> int:
        if not isinstance(message, dict):
            return 0
        if message.get("type") == "error":
            log.warning("Finnhub error: %s", message.get("msg"))
            return 0
        if message.get("type") != "trade":
            return 0
        known = self.finnhub_symbols
        latest: dict[str, Decimal] = {}
        for trade in message.get("data") or []:
            symbol = known.get(trade.get("s")) if isinstance(trade, dict) else None
            price = trade.get("p") if symbol else None
            if isinstance(price, Decimal) and price.is_finite() and price > 0:
                latest[symbol] = price  # a batch may hold many trades; the last one is the price now
        for symbol, price in latest.items():
            self.sink(symbol, price, None, None, self.source)
        return len(latest)
