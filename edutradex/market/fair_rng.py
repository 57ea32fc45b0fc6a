"""The committed-seed randomness of simulated prices (provably fair prices, issue #14).

Pure standard library. tools/verify_prices.py, the standalone script traders run, carries
its own copy of these functions and of the walk's arithmetic (a trader must be able to read
and run it without this package); tests/market/test_fairness.py checks that the two agree
draw for draw and price for price. The scheme is documented in that script's docstring:
tick n of SYMBOL draws from HMAC-SHA256(seed, f"{SYMBOL}:{n}:0"), cut into four 53-bit
uniforms; Box-Muller turns the first two into a standard normal."""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets

SEED_BYTES = 32
MAX_STEP_SECONDS = 5.0  # after a stall, move the walk as if at most this much time passed
MIN_STEP_SECONDS = 0.001
_TWO_POW_53 = 9007199254740992.0


def new_seed() -> bytes:
    return secrets.token_bytes(SEED_BYTES)


def replay_seed(feed_seed: int | str, symbol: str, start_ms: int) -> bytes:
    """A seed derived from FEED_SEED (replays in development and tests; guessable, so never
    in production)."""
    return hashlib.sha256(f"{feed_seed}:{symbol}:{start_ms}".encode()).digest()


def commitment(seed: bytes) -> str:
    return hashlib.sha256(seed).hexdigest()


def uniforms(seed: bytes, symbol: str, n: int, block: int = 0) -> tuple[float, float, float, float]:
    digest = hmac.new(seed, f"{symbol}:{n}:{block}".encode(), hashlib.sha256).digest()
    return tuple((int.from_bytes(digest[i:i + 8], "big") >> 11) / _TWO_POW_53 for i in (0, 8, 16, 24))


def draws(seed: bytes, symbol: str, n: int) -> tuple[float, float, float]:
    """(standard normal, jump uniform, jump-sign uniform) of tick n of the period."""
    u0, u1, u2, u3 = uniforms(seed, symbol, n)
    return math.sqrt(-2.0 * math.log(1.0 - u0)) * math.cos(2.0 * math.pi * u1), u2, u3


def step_seconds(ts_ms: int, previous_ts_ms: int) -> float:
    """The dt of a step: the time since the previous tick, within [0.001, 5] seconds."""
    return max(min(MAX_STEP_SECONDS, (ts_ms - previous_ts_ms) / 1000), MIN_STEP_SECONDS)
