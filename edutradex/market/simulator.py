"""Simulated prices for OTC and SYNTHETIC markets: a geometric random walk per symbol.

The log price moves by a normal step with volatility sigma per sqrt(second) and a drift set
by the trend bias; SPIKE mode adds occasional symmetric jumps. Working in log space keeps
every price above zero. The walk is pure Python and deterministic for a seed, so tests
replay it exactly and measure its statistics over many steps without waiting on a clock.
The walker reads its config on every step, so a change applies from the next tick.

The feed gives every step its draws from the period's committed seed (fair_rng: provably
fair prices); without them a walk draws from its own random.Random (statistics tests).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

from .models import VolatilityMode


@dataclass(frozen=True)
class VolatilityProfile:
    sigma: float  # diffusion volatility of log price per sqrt(second)
    jump_rate: float = 0.0  # expected jumps per second
    jump_size: float = 0.0  # absolute log move of one jump (up or down with equal odds)

    @property
    def total_sigma(self) -> float:
        """Realised volatility per sqrt(second), jumps included."""
        return math.sqrt(self.sigma**2 + self.jump_rate * self.jump_size**2)


# Per-second figures after the product guide's OTC generator (LOW < MEDIUM < HIGH, SPIKE
# jumps), scaled so that 5 s to 15 min rise/fall trades see visible moves.
PROFILES: dict[str, VolatilityProfile] = {
    VolatilityMode.LOW.value: VolatilityProfile(sigma=0.00003),
    VolatilityMode.MEDIUM.value: VolatilityProfile(sigma=0.00015),
    VolatilityMode.HIGH.value: VolatilityProfile(sigma=0.0003),
    VolatilityMode.SPIKE.value: VolatilityProfile(sigma=0.0006, jump_rate=0.05, jump_size=0.003),
}

# Drift per second at trend bias 1, as a multiple of the mode's sigma: a clear trend over
# minutes while single ticks still look random.
DRIFT_PER_SIGMA = 0.1


@dataclass(frozen=True)
class WalkConfig:
    volatility_mode: str = VolatilityMode.MEDIUM.value
    trend_bias: float = 0.0  # -1 (bearish) .. 1 (bullish)
    precision: int = 5
    spread: Decimal = Decimal("0")


@dataclass(frozen=True)
class SimulatedQuote:
    bid: Decimal
    ask: Decimal
    mid: Decimal


def quote_from_mid(mid: float | Decimal, precision: int, spread: Decimal) -> SimulatedQuote:
    """Round to the market's precision; bid and ask sit half the spread either side, rounded
    outwards so the quoted spread is never narrower than configured."""
    quantum = Decimal(1).scaleb(-precision)
    exact = Decimal(str(mid)) if isinstance(mid, float) else mid
    half = spread / 2
    rounded = exact.quantize(quantum, ROUND_HALF_EVEN)
    bid = (exact - half).quantize(quantum, ROUND_FLOOR)
    ask = (exact + half).quantize(quantum, ROUND_CEILING)
    if bid <= 0:  # a spread wider than a tiny price: keep every figure positive
        bid = quantum
    return SimulatedQuote(bid=bid, ask=max(ask, bid), mid=min(max(rounded, bid), ask))


class RandomWalk:
    """One symbol's walk. `price` is the unrounded mid; quotes are rounded views of it."""

    def __init__(self, start_price: Decimal | float, config: WalkConfig, seed: int | str | None = None):
        if float(start_price) <= 0:
            raise ValueError("a start price must be above zero")
        self.log_price = math.log(float(start_price))
        self.config = config
        self.rng = random.Random(seed)

    @property
    def price(self) -> float:
        return math.exp(self.log_price)

    def step(self, dt: float = 1.0, draws: tuple[float, float, float] | None = None) -> float:
        """Advance by dt seconds with the config as it is now; returns the new mid. `draws`:
        (standard normal, jump uniform, jump-sign uniform), see fair_rng.draws."""
        profile = PROFILES[self.config.volatility_mode]
        if draws is None:
            jumps = (self.rng.random(), self.rng.random()) if profile.jump_rate else (1.0, 1.0)
            draws = (self.rng.gauss(0.0, 1.0), *jumps)
        z, u_jump, u_sign = draws
        bias = max(-1.0, min(1.0, float(self.config.trend_bias)))
        sigma = profile.sigma
        drift = bias * DRIFT_PER_SIGMA * profile.total_sigma
        # -sigma^2/2 (Ito) makes the expected price, not just the median, flat at bias 0.
        move = (drift - 0.5 * profile.total_sigma**2) * dt + sigma * math.sqrt(dt) * z
        if profile.jump_rate and u_jump < profile.jump_rate * dt:
            move += profile.jump_size if u_sign < 0.5 else -profile.jump_size
        self.log_price += move
        return self.price

    def quote(self) -> SimulatedQuote:
        return quote_from_mid(self.price, self.config.precision, self.config.spread)


class Simulator:
    """The walks of every simulated symbol, each seeded from (seed, symbol)."""

    def __init__(self, seed: int | None = None):
        self.seed = seed
        self.walks: dict[str, RandomWalk] = {}

    def configure(self, symbol: str, config: WalkConfig, start_price: Decimal | None = None) -> RandomWalk:
        """Create the walk (from start_price) or change its config from the next step."""
        walk = self.walks.get(symbol)
        if walk is None:
            if start_price is None:
                raise ValueError(f"{symbol}: a new walk needs a start price")
            seed = None if self.seed is None else f"{self.seed}:{symbol}"
            walk = self.walks[symbol] = RandomWalk(start_price, config, seed)
        else:
            walk.config = config
        return walk

    def forget(self, symbol: str) -> None:
        self.walks.pop(symbol, None)

    def step(self, symbol: str, dt: float, draws: tuple[float, float, float] | None = None) -> SimulatedQuote:
        walk = self.walks[symbol]
        walk.step(dt, draws)
        return walk.quote()
