"""What a placement reads from Redis, in ONE round trip.

A placement needs the market config version (is the catalogue snapshot current?), the
market's latest quote (fresh enough to enter at?) and the feed's heartbeat with its TTL (do
this process's clock and the feed's agree?). Read one by one they cost three round trips
(and the fragment rendered afterwards re-read the config version); here they go in one
MULTI, and the config version is remembered for the rest of the request
(config_signal.remember_shared), so the snapshot lookups of the placement and of its
response fragment read no more. Nothing is cached across requests: an admin's edit
committed before the request applies to it, exactly as before.

Without Redis (the embedded default) the same values come from this process."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from . import config_signal, feed, quotes


@dataclass(frozen=True)
class PlacementReads:
    """What was read in the batch; None: not read (embedded), read it when it is needed."""
    quote: quotes.Quote | None
    heartbeat: tuple[dict | None, int | None, int] | None  # feed.read_heartbeat_with_age's answer
    batched: bool = True

    def fresh_quote(self, symbol: str, display_name: str) -> quotes.Quote:
        """quotes.fresh_quote, on the quote of the batch when there was one."""
        if not self.batched:
            return quotes.fresh_quote(symbol, display_name)
        return quotes.checked_fresh(self.quote, symbol, display_name)


def placement_reads(symbol: str) -> PlacementReads:
    """The config version (remembered for this request), `symbol`'s latest quote and the
    feed's heartbeat. The symbol may be unknown: its quote is then None and the caller's
    market lookup refuses it. Embedded (no Redis) nothing is read here: the in-process
    values cost no round trip, and are read where they are used, as late as before."""
    if not current_app.config["REDIS_URL"]:
        return PlacementReads(None, None, batched=False)
    from .. import jobs

    pipe = jobs.redis_connection().pipeline(transaction=True)
    pipe.get(config_signal.REDIS_KEY)
    pipe.get(quotes.REDIS_KEY.format(symbol=symbol))
    pipe.get(feed.HEARTBEAT_KEY)
    pipe.pttl(feed.HEARTBEAT_KEY)
    before = quotes.now_ms()
    shared, raw_quote, raw_beat, ttl = pipe.execute()
    read_at = (before + quotes.now_ms()) // 2
    config_signal.remember_shared(shared)
    return PlacementReads(quotes.Quote.from_json(raw_quote) if raw_quote else None,
                          feed.heartbeat_reading(raw_beat, ttl, read_at))
