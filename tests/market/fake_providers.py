"""Local fake price providers on loopback, speaking Twelve Data's and Finnhub's documented
WebSocket (and Twelve Data's REST time_series) formats. Tests push prices, go quiet or drop
connections to exercise the adapters."""

from __future__ import annotations

import json
import threading
import urllib.parse

from simple_websocket import ConnectionClosed, Server
from werkzeug.serving import make_server


class FakeProvider:
    api_key_param = "apikey"

    def __init__(self, api_key: str = "test-key"):
        self.api_key = api_key
        self.clients: list[Server] = []
        self.received: list[dict] = []
        self.connections = 0
        self.lock = threading.Lock()
        self.server = make_server("127.0.0.1", 0, self.wsgi, threaded=True)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> FakeProvider:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.drop_all()
        self.server.shutdown()

    def wsgi(self, environ, start_response):
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        if environ.get("HTTP_UPGRADE", "").lower() != "websocket":
            return self.rest(environ, query, start_response)
        if query.get(self.api_key_param) != [self.api_key]:
            start_response("401 Unauthorized", [("Content-Type", "application/json")])
            return [b'{"status": "error", "message": "bad api key"}']
        ws = Server.accept(environ)
        with self.lock:
            self.clients.append(ws)
            self.connections += 1
        try:
            while True:
                raw = ws.receive(timeout=None)
                if raw is None:
                    break
                message = json.loads(raw)
                self.received.append(message)
                self.on_message(ws, message)
        except ConnectionClosed:
            pass
        finally:
            with self.lock:
                if ws in self.clients:
                    self.clients.remove(ws)
        return []

    def rest(self, environ, query, start_response):
        start_response("404 Not Found", [("Content-Type", "application/json")])
        return [b"{}"]

    def on_message(self, ws, message: dict) -> None:
        pass

    def broadcast(self, message: dict) -> int:
        raw = json.dumps(message)
        with self.lock:
            clients = list(self.clients)
        for ws in clients:
            try:
                ws.send(raw)
            except ConnectionClosed:
                pass
        return len(clients)

    def drop_all(self) -> None:
        with self.lock:
            clients, self.clients = self.clients, []
        for ws in clients:
            try:
                ws.close()
            except ConnectionClosed:
                pass  # the adapter closed its side first

    def subscribed(self) -> set[str]:
        raise NotImplementedError


class FakeTwelveData(FakeProvider):
    """wss://ws.twelvedata.com/v1/quotes/price?apikey=KEY and GET /time_series."""

    def __init__(self, api_key: str = "test-key"):
        super().__init__(api_key)
        self.history: dict[str, list[dict]] = {}

    @property
    def ws_url(self) -> str:
        return f"ws://{self.base}/v1/quotes/price"

    @property
    def rest_url(self) -> str:
        return f"http://{self.base}"

    def on_message(self, ws, message):
        if message.get("action") == "subscribe":
            symbols = message["params"]["symbols"].split(",")
            ws.send(json.dumps({"event": "subscribe-status", "status": "ok",
                                "success": [{"symbol": s, "exchange": "PHYSICAL CURRENCY", "type": "Physical Currency"}
                                            for s in symbols], "fails": []}))
        elif message.get("action") == "heartbeat":
            ws.send(json.dumps({"event": "heartbeat", "status": "ok"}))

    def subscribed(self) -> set[str]:
        return {s for m in self.received if m.get("action") == "subscribe" for s in m["params"]["symbols"].split(",")}

    def price(self, symbol: str, price: float, timestamp: int = 1_700_000_000, **extra) -> int:
        return self.broadcast({"event": "price", "symbol": symbol, "currency_base": symbol.split("/")[0],
                               "currency_quote": symbol.split("/")[1], "exchange": "PHYSICAL CURRENCY",
                               "type": "Physical Currency", "timestamp": timestamp, "price": price, **extra})

    def rest(self, environ, query, start_response):
        if environ["PATH_INFO"] != "/time_series":
            return super().rest(environ, query, start_response)
        if query.get("apikey") != [self.api_key]:
            body = {"code": 401, "message": "**apikey** parameter is incorrect", "status": "error"}
        else:
            symbol = query["symbol"][0]
            body = {"meta": {"symbol": symbol, "interval": query["interval"][0], "type": "Physical Currency"},
                    "values": self.history.get(symbol, []), "status": "ok"}
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(body).encode()]


class FakeFinnhub(FakeProvider):
    """wss://ws.finnhub.io?token=KEY"""

    api_key_param = "token"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.base}"

    def subscribed(self) -> set[str]:
        return {m["symbol"] for m in self.received if m.get("type") == "subscribe"}

    def trades(self, *trades: tuple[str, float]) -> int:
        return self.broadcast({"type": "trade", "data": [{"s": s, "p": p, "t": 1_700_000_000_000 + i, "v": 0}
                                                         for i, (s, p) in enumerate(trades)]})

    def ping(self) -> int:
        return self.broadcast({"type": "ping"})
