"""Twelve Data: WebSocket prices (wss://ws.twelvedata.com/v1/quotes/price?apikey=...) and
REST history (GET /time_series).

Client -> server: {"action": "subscribe", "params": {"symbols": "EUR/USD,GBP/USD"}} and a
{"action": "heartbeat"} every 10 s. Server -> client: {"event": "subscribe-status", ...},
{"event": "heartbeat", "status": "ok"} and {"event": "price", "symbol": "EUR/USD",
"price": 1.0851, "timestamp": 1700000000, "bid": ..., "ask": ...} (bid/ask not always)."""

from __future__ import annotations

import json
import logging
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from .base import PriceSink, WebSocketAdapter

log = logging.getLogger(__name__)
EIGHT_PLACES = Decimal("0.00000001")  # the Price column


class TwelveDataAdapter(WebSocketAdapter):
    source = "TWELVEDATA"
    heartbeat_every = 10.0

    def __init__(self, api_key: str, ws_url: str, rest_url: str, symbols: dict[str, str], sink: PriceSink, *,
                 stale_after: float, history_sink: Callable[[str, list[dict]], None] | None = None, **kwargs):
        super().__init__(symbols, sink, stale_after=stale_after, **kwargs)
        self.api_key = api_key
        self.ws_url = ws_url
        self.rest_url = rest_url.rstrip("/")
        self.history_sink = history_sink
        self._backfilled: set[str] = set()

    def url(self) -> str:
        return f"{self.ws_url}?{urllib.parse.urlencode({'apikey': self.api_key})}"

    def subscribe_messages(self, provider_symbols: list[str]) -> list[dict]:
        return [{"action": "subscribe", "params": {"symbols": ",".join(provider_symbols)}}]

    def heartbeat_message(self) -> dict:
        return {"action": "heartbeat"}

    def handle(self, message) -> int:
        if not isinstance(message, dict):
            return 0
        event = message.get("event")
        if event == "subscribe-status" and message.get("fails"):
            log.warning("Twelve Data refused symbols: %s", message.get("fails"))
        if event != "price":
            return 0
        symbol = self.symbols.get(message.get("symbol"))
        price = message.get("price")
        if symbol is None or not isinstance(price, Decimal) or not price.is_finite() or price <= 0:
            return 0
        bid, ask = message.get("bid"), message.get("ask")
        valid = all(isinstance(v, Decimal) and v.is_finite() and v > 0 for v in (bid, ask))
        self.sink(symbol, price, bid if valid else None, ask if valid else None, self.source)
        return 1

    # ---- REST history ------------------------------------------------------------------
    def history(self, provider_symbol: str, interval: str = "1min", outputsize: int = 500) -> list[dict]:
        """Candles oldest first: {"start_s", "open", "high", "low", "close"} (Decimals)."""
        query = urllib.parse.urlencode({"symbol": provider_symbol, "interval": interval, "outputsize": outputsize,
                                        "timezone": "UTC", "apikey": self.api_key})
        with urllib.request.urlopen(f"{self.rest_url}/time_series?{query}", timeout=10) as response:
            body = json.loads(response.read(), parse_float=Decimal)
        if body.get("status") != "ok":
            raise ValueError(f"Twelve Data history for {provider_symbol}: {body.get('message', 'error')}")
        bars = []
        for value in body.get("values", []):
            start = datetime.strptime(value["datetime"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
            bars.append({"start_s": int(start.timestamp()),
                         **{k: Decimal(str(value[k])).quantize(EIGHT_PLACES) for k in ("open", "high", "low", "close")}})
        return sorted(bars, key=lambda b: b["start_s"])

    def on_connected(self) -> None:
        """Fill the chart history of symbols seen for the first time in this process."""
        if self.history_sink is None:
            return
        for provider_symbol, symbol in sorted(self.symbols.items()):
            if symbol in self._backfilled:
                continue
            try:
                self.history_sink(symbol, self.history(provider_symbol))
                self._backfilled.add(symbol)
            except Exception as exc:  # noqa: BLE001 - history is a nicety; prices still flow
                log.warning("Twelve Data history for %s failed: %s", provider_symbol, exc)
