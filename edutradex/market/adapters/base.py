"""The adapter interface and the reconnecting WebSocket loop the providers share."""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Protocol

import websocket

from ...extensions import socketio

log = logging.getLogger(__name__)


class PriceSink(Protocol):
    def __call__(self, symbol: str, price: Decimal, bid: Decimal | None = None, ask: Decimal | None = None,
                 source: str = "FEED") -> None: ...


def parse_json(raw: str | bytes):
    """Provider JSON with prices as exact Decimals, never floats."""
    return json.loads(raw, parse_float=Decimal, parse_int=Decimal)


class WebSocketAdapter:
    """Subclasses give the URL, the subscribe messages and the message parser."""

    source = "FEED"
    heartbeat_every: float | None = None  # seconds between client heartbeats, if the provider wants them

    def __init__(self, symbols: dict[str, str], sink: PriceSink, *, stale_after: float,
                 min_backoff: float = 1.0, max_backoff: float = 60.0, sleep: Callable[[float], None] = socketio.sleep):
        self.symbols = dict(symbols)  # provider symbol -> our symbol
        self.sink = sink
        self.stale_after = stale_after
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.sleep = sleep
        self.connections = 0
        self.prices = 0
        self._symbols_changed = False

    # ---- the provider's part -----------------------------------------------------------
    def url(self) -> str:
        raise NotImplementedError

    def subscribe_messages(self, provider_symbols: list[str]) -> list[dict]:
        raise NotImplementedError

    def heartbeat_message(self) -> dict | None:
        return None

    def handle(self, message) -> int:
        """Parse one decoded message, call the sink per price; returns how many prices."""
        raise NotImplementedError

    def on_connected(self) -> None:
        """Hook after subscribing (Twelve Data backfills history here)."""

    # ---- the shared loop -----------------------------------------------------------------
    def update_symbols(self, symbols: dict[str, str]) -> None:
        if symbols != self.symbols:
            self.symbols = dict(symbols)
            self._symbols_changed = True

    def backoff(self, attempt: int) -> float:
        delay = min(self.max_backoff, self.min_backoff * 2 ** attempt)
        return delay * random.uniform(0.8, 1.0)

    def run(self, should_stop: Callable[[], bool]) -> None:
        attempt = 0
        while not should_stop():
            if not self.symbols:
                self.sleep(1.0)
                continue
            got_prices = False
            ws = None
            try:
                ws = websocket.create_connection(self.url(), timeout=10)
                self.connections += 1
                self._symbols_changed = False
                for message in self.subscribe_messages(sorted(self.symbols)):
                    ws.send(json.dumps(message))
                log.info("%s: connected, %d symbols", type(self).__name__, len(self.symbols))
                self.on_connected()
                got_prices = self._read(ws, should_stop)
            except Exception as exc:  # noqa: BLE001 - any failure means: reconnect later
                log.warning("%s: connection failed: %s", type(self).__name__, exc)
            finally:
                if ws is not None:
                    try:
                        ws.close()
                    except Exception:  # noqa: BLE001
                        pass
            if should_stop():
                return
            attempt = 0 if got_prices else attempt + 1
            self.sleep(self.backoff(attempt))

    def _read(self, ws, should_stop: Callable[[], bool]) -> bool:
        """Read until the connection closes, goes stale or the symbols change."""
        ws.settimeout(0.5)
        got_prices = False
        last_price = last_beat = time.monotonic()
        while not should_stop() and not self._symbols_changed:
            now = time.monotonic()
            if self.heartbeat_every and now - last_beat >= self.heartbeat_every and self.heartbeat_message():
                ws.send(json.dumps(self.heartbeat_message()))
                last_beat = now
            if now - last_price > self.stale_after:
                log.warning("%s: no price for %.0f s; reconnecting", type(self).__name__, self.stale_after)
                return got_prices
            try:
                raw = ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            if not raw:
                return got_prices  # closed by the provider
            try:
                count = self.handle(parse_json(raw))
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("%s: ignoring a malformed message (%s)", type(self).__name__, exc)
                continue
            if count:
                self.prices += count
                got_prices = True
                last_price = time.monotonic()
        return got_prices
