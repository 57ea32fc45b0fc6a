#!/usr/bin/env python3
"""Check a revealed period of EduTradeX simulated prices, with nothing but Python 3.11+.

Usage:  python verify_prices.py EXPORT.json
Prints "OK: <n> ticks verified" and exits 0, or prints the first problem and exits 1. If
some ticks could not be recomputed (the walk's state went with ticks lost before them, and
no restart point follows), it says which and exits 3.

The export (downloaded from a market's fairness page) holds the revealed seed, the commitment
published before the period started, the config log, the gaps and every recorded tick. This
script checks sha256(seed) == commitment, then recomputes every tick from the seed.

How a price is made (the same arithmetic as edutradex/market/simulator.py and fair_rng.py;
tests/market/test_fairness.py checks that both agree):

1. Randomness for tick number n (1, 2, ... within the period) of SYMBOL: the 32-byte
   block HMAC-SHA256(key=seed, msg=f"{SYMBOL}:{n}:0"), i.e. a counter-mode stream whose
   block k would use msg f"{SYMBOL}:{n}:{k}" (one block is all a tick needs). The block is
   cut into four 8-byte big-endian words w0..w3; each gives a uniform u = (w >> 11) / 2**53
   in [0, 1) (53 bits, a double's whole mantissa).
2. z = sqrt(-2 ln(1 - u0)) * cos(2 pi u1)   (Box-Muller: a standard normal);
   u2 decides whether a SPIKE jump happens (u2 < jump_rate * dt), u3 its sign (u3 < 0.5: up).
3. The walk is in log price: move = (drift - total_sigma^2 / 2) dt + sigma sqrt(dt) z
   (+/- jump_size on a jump), with the volatility mode's sigma, jump rate and size below
   and drift = trend_bias * 0.1 * total_sigma. dt is the time since the previous tick in
   seconds (at most 5, at least 0.001).
4. The quote: mid = exp(log price) rounded half-even to the precision; bid = mid - spread/2
   rounded down, ask = mid + spread/2 rounded up (Decimal arithmetic on repr(mid)).

The config log says which settings apply from which tick number. An entry with an anchor
restarts the walk at exactly its tick from that price (the period's opening price, the last
recorded price after a feed restart, or the last quoted price after the tick store dropped
ticks), as if the previous tick had been at anchor.ts_ms. Gaps are tick numbers the feed used
(or reserved) but did not record, e.g. ticks lost in a crash; the feed restarts from an anchor
after one, so verification carries on across it. Without such a restart point the ticks after
a hole cannot be recomputed (the walk's exact state went with the lost ticks): they are
reported, never counted as verified.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import sys
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import NamedTuple

FORMAT = "edutradex-fairness/1"

# mode: (sigma per sqrt(second), jumps per second, jump size in log price)
PROFILES = {
    "LOW": (0.00003, 0.0, 0.0),
    "MEDIUM": (0.00015, 0.0, 0.0),
    "HIGH": (0.0003, 0.0, 0.0),
    "SPIKE": (0.0006, 0.05, 0.003),
}
DRIFT_PER_SIGMA = 0.1
MAX_STEP_SECONDS = 5.0
MIN_STEP_SECONDS = 0.001


def uniforms(seed: bytes, symbol: str, n: int, block: int = 0) -> tuple[float, float, float, float]:
    digest = hmac.new(seed, f"{symbol}:{n}:{block}".encode(), hashlib.sha256).digest()
    return tuple((int.from_bytes(digest[i:i + 8], "big") >> 11) / 9007199254740992.0 for i in (0, 8, 16, 24))


def draws(seed: bytes, symbol: str, n: int) -> tuple[float, float, float]:
    """(standard normal, jump uniform, jump-sign uniform) of tick n."""
    u0, u1, u2, u3 = uniforms(seed, symbol, n)
    return math.sqrt(-2.0 * math.log(1.0 - u0)) * math.cos(2.0 * math.pi * u1), u2, u3


def step_seconds(ts_ms: int, previous_ts_ms: int) -> float:
    return max(min(MAX_STEP_SECONDS, (ts_ms - previous_ts_ms) / 1000), MIN_STEP_SECONDS)


def log_move(mode: str, trend_bias: float, dt: float, z: float, u_jump: float, u_sign: float) -> float:
    sigma, jump_rate, jump_size = PROFILES[mode]
    total_sigma = math.sqrt(sigma**2 + jump_rate * jump_size**2)
    bias = max(-1.0, min(1.0, float(trend_bias)))
    drift = bias * DRIFT_PER_SIGMA * total_sigma
    move = (drift - 0.5 * total_sigma**2) * dt + sigma * math.sqrt(dt) * z
    if jump_rate and u_jump < jump_rate * dt:
        move += jump_size if u_sign < 0.5 else -jump_size
    return move


def quote(mid: float | Decimal, precision: int, spread: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    """(bid, ask, mid) of an unrounded mid."""
    quantum = Decimal(1).scaleb(-precision)
    exact = Decimal(repr(mid)) if isinstance(mid, float) else mid
    half = spread / 2
    rounded = exact.quantize(quantum, ROUND_HALF_EVEN)
    bid = (exact - half).quantize(quantum, ROUND_FLOOR)
    ask = (exact + half).quantize(quantum, ROUND_CEILING)
    if bid <= 0:
        bid = quantum
    return bid, max(ask, bid), min(max(rounded, bid), ask)


class Result(NamedTuple):
    ok: bool  # no mismatch and the commitment holds
    checked: int
    message: str
    unverifiable: tuple[int, ...] = ()  # tick numbers that could not be recomputed


def _ranges(numbers: list[int]) -> str:
    spans: list[list[int]] = []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}..{b}" for a, b in spans)


def verify(export: dict) -> Result:
    if export.get("format") != FORMAT:
        return Result(False, 0, f"not an export this script reads (format {export.get('format')!r}, expected {FORMAT})")
    try:
        seed = bytes.fromhex(export["seed"])
    except (KeyError, TypeError, ValueError):
        return Result(False, 0, "the export has no revealed seed (64 hex digits)")
    if hashlib.sha256(seed).hexdigest() != str(export.get("commitment", "")).lower():
        return Result(False, 0, f"commitment check failed: sha256(seed) = {hashlib.sha256(seed).hexdigest()}, "
                                f"but the published commitment is {export.get('commitment')}")
    symbol = export["symbol"]
    entries = sorted(export["config_log"], key=lambda e: e["from_tick"])
    gaps = export.get("gaps", [])
    config = None
    log_price = previous_ts = previous_n = None
    checked = 0
    entry_at = 0
    unverifiable: list[int] = []
    for tick in sorted(export["ticks"], key=lambda t: t["n"]):
        n = tick["n"]
        anchor = None
        continuous = previous_n is not None and n == previous_n + 1
        while entry_at < len(entries) and entries[entry_at]["from_tick"] <= n:
            entry = entries[entry_at]
            config = entry["config"]
            if entry.get("anchor"):
                if entry["from_tick"] == n:
                    anchor = entry["anchor"]
                else:  # the walk restarted at a tick that is missing: its state is unknown here
                    continuous = False
            entry_at += 1
        if anchor is not None:
            log_price = math.log(float(Decimal(anchor["mid"])))
            previous_ts = anchor["ts_ms"]
        elif not continuous:
            log_price = None
        if config is None or log_price is None:
            unverifiable.append(n)
            previous_n = n
            continue
        z, u_jump, u_sign = draws(seed, symbol, n)
        dt = step_seconds(tick["ts_ms"], previous_ts)
        log_price += log_move(config["volatility_mode"], float(config["trend_bias"]), dt, z, u_jump, u_sign)
        bid, ask, mid = quote(math.exp(log_price), int(config["precision"]), Decimal(config["spread"]))
        got = (Decimal(tick["bid"]), Decimal(tick["ask"]), Decimal(tick["mid"]))
        if got != (bid, ask, mid):
            return Result(False, checked, f"MISMATCH at tick {n}: expected bid/ask/mid {bid}/{ask}/{mid}, "
                                          f"got {tick['bid']}/{tick['ask']}/{tick['mid']}")
        previous_ts, previous_n = tick["ts_ms"], n
        checked += 1
    if unverifiable:
        recorded_gaps = ", ".join(f"{g['from_tick']}..{g['to_tick']}" for g in gaps) or "none"
        return Result(True, checked, f"OK: {checked} ticks verified; {len(unverifiable)} could not be recomputed "
                                     f"(ticks {_ranges(unverifiable)}: they follow ticks that were not recorded, "
                                     f"with no restart point; recorded gaps: {recorded_gaps})", tuple(unverifiable))
    return Result(True, checked, f"OK: {checked} ticks verified")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    try:
        with open(argv[1], encoding="utf-8") as handle:
            export = json.load(handle)
    except (OSError, ValueError) as exc:
        print(f"cannot read {argv[1]}: {exc}", file=sys.stderr)
        return 2
    try:
        result = verify(export)
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        print(f"malformed export: {exc!r}")
        return 1
    print(result.message)
    if not result.ok:
        return 1
    return 3 if result.unverifiable else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
