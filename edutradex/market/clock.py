"""One clock: trade times come from the web process's clock, tick times from the feed's.

The feed's heartbeat carries its clock (`ts_ms`), and is stored with a TTL, so a reader can
tell how long ago it was written without trusting any clock but its own: the age is what
the TTL has run down (measured by Redis, or by this process for the embedded feed). The
offset of the feed's clock from this process's is then heartbeat time + age - now, good to
a Redis round trip. Placements are refused while it exceeds MAX_CLOCK_SKEW_MS."""

from __future__ import annotations

from flask import current_app

from ..errors import DomainError
from . import feed, quotes


class ClockSkew(DomainError):
    status_code = 503


def feed_clock_offset_ms(reading: tuple[dict | None, int | None, int] | None = None) -> int | None:
    """How far the feed's clock is ahead of this process's (negative: behind), in ms; None
    while there is no heartbeat to measure against. `reading`: a heartbeat already read
    (feed.read_heartbeat_with_age's answer), else it is read now."""
    beat, age_ms, read_at_ms = reading if reading is not None else feed.read_heartbeat_with_age(quotes.now_ms)
    if beat is None or age_ms is None:
        return None
    return beat["ts_ms"] + age_ms - read_at_ms


def check_clock_skew(reading: tuple[dict | None, int | None, int] | None = None) -> None:
    """Refuse a placement while this process's clock and the feed's disagree too much:
    expiry (this clock) and exit ticks (the feed's) would not line up."""
    offset = feed_clock_offset_ms(reading)
    limit = current_app.config["MAX_CLOCK_SKEW_MS"]
    if offset is not None and abs(offset) > limit:
        raise ClockSkew(f"Trading is paused: this server's clock and the price feed's differ by "
                        f"{abs(offset) / 1000:.1f} s (at most {limit / 1000:g} s is allowed). Try again in a moment.")


def clock_health() -> tuple[bool, dict]:
    """For /healthz: this process's offset from the feed's clock."""
    offset = feed_clock_offset_ms()
    limit = current_app.config["MAX_CLOCK_SKEW_MS"]
    return offset is None or abs(offset) <= limit, {"feed_offset_ms": offset, "max_skew_ms": limit}
