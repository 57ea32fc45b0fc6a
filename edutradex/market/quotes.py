"""The latest quote per symbol, as published by the one price authority (the feed loop).

Embedded default: the feed loop runs in the web process and publishes into a dict here.
Production: the `feed` process publishes into Redis (one hash per symbol) and every web
process and worker reads from there. Readers never generate prices."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass
from decimal import Decimal

from flask import current_app

from ..errors import DomainError

REDIS_KEY = "edutradex:quote:{symbol}"


@dataclass(frozen=True)
class Quote:
    symbol: str
    bid: Decimal
    ask: Decimal
    mid: Decimal
    tick_id: int | None  # the tick's id in the store (given by the feed, stored with the next batch)
    ts_ms: int  # server UTC time, ms
    source: str

    def to_json(self) -> str:
        data = asdict(self)
        for key in ("bid", "ask", "mid"):
            data[key] = str(data[key])
        return json.dumps(data)

    @classmethod
    def from_json(cls, raw: str | bytes) -> Quote:
        data = json.loads(raw)
        for key in ("bid", "ask", "mid"):
            data[key] = Decimal(data[key])
        return cls(**data)


class MarketUnavailable(DomainError):
    status_code = 409


_local_quotes: dict[str, Quote] = {}
_local_lock = threading.Lock()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _redis():
    if not current_app.config["REDIS_URL"]:
        return None
    from .. import jobs

    return jobs.redis_connection()


def publish_quote(quote: Quote, lock=None) -> None:
    """Called by the price authority only. With its AuthorityLock, the Redis write happens
    only while the lock is still this holder's (a resumed old holder cannot overwrite the
    new one's quote)."""
    redis = _redis()
    if redis is None:
        with _local_lock:
            _local_quotes[quote.symbol] = quote
    elif lock is not None:
        lock.fenced_set(REDIS_KEY.format(symbol=quote.symbol), quote.to_json())
    else:
        redis.set(REDIS_KEY.format(symbol=quote.symbol), quote.to_json())


def latest_quote(symbol: str) -> Quote | None:
    redis = _redis()
    if redis is None:
        return _local_quotes.get(symbol)
    raw = redis.get(REDIS_KEY.format(symbol=symbol))
    return Quote.from_json(raw) if raw else None


def clear_local_quotes() -> None:
    """For tests: forget every in-process quote."""
    with _local_lock:
        _local_quotes.clear()


def fresh_quote(symbol: str, display_name: str | None = None) -> Quote:
    """The latest quote, or MarketUnavailable if there is none or it is stale."""
    return checked_fresh(latest_quote(symbol), symbol, display_name)


def checked_fresh(quote: Quote | None, symbol: str, display_name: str | None = None) -> Quote:
    """`fresh_quote` for a quote already read (e.g. by market.hot.placement_reads)."""
    max_age_ms = int(current_app.config.get("FEED_STALE_AFTER_SECONDS", 10) * 1000)
    name = display_name or symbol
    if quote is None:
        raise MarketUnavailable(f"{name} has no live price right now. Try another market.")
    if now_ms() - quote.ts_ms > max_age_ms:
        raise MarketUnavailable(f"{name} prices are stale (the feed has gone quiet). Trading is paused.")
    return quote
