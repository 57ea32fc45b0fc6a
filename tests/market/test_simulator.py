"""The simulator's statistics: many steps of the pure-Python walk, no clock involved."""

from __future__ import annotations

import math
import statistics
from decimal import Decimal

import pytest

from edutradex.market.simulator import DRIFT_PER_SIGMA, PROFILES, RandomWalk, Simulator, WalkConfig, quote_from_mid

STEPS = 40_000


def log_returns(walk: RandomWalk, steps: int = STEPS, dt: float = 1.0) -> list[float]:
    previous = walk.log_price
    out = []
    for _ in range(steps):
        walk.step(dt)
        out.append(walk.log_price - previous)
        previous = walk.log_price
    return out


@pytest.mark.parametrize("mode, tolerance", [("LOW", 0.03), ("MEDIUM", 0.03), ("HIGH", 0.03), ("SPIKE", 0.10)])
def test_realised_volatility_matches_the_mode(mode, tolerance):
    walk = RandomWalk(Decimal("100"), WalkConfig(volatility_mode=mode), seed=f"vol-{mode}")
    realised = statistics.pstdev(log_returns(walk))
    assert realised == pytest.approx(PROFILES[mode].total_sigma, rel=tolerance)


def test_modes_are_ordered_and_spike_jumps():
    sigmas = [PROFILES[m].total_sigma for m in ("LOW", "MEDIUM", "HIGH", "SPIKE")]
    assert sigmas == sorted(sigmas)
    profile = PROFILES["SPIKE"]
    returns = log_returns(RandomWalk(Decimal("100"), WalkConfig(volatility_mode="SPIKE"), seed="jumps"))
    jumps = sum(1 for r in returns if abs(r) > 4 * profile.sigma)
    expected = profile.jump_rate * STEPS
    assert 0.7 * expected < jumps < 1.3 * expected
    medium = log_returns(RandomWalk(Decimal("100"), WalkConfig(volatility_mode="HIGH"), seed="no-jumps"))
    assert sum(1 for r in medium if abs(r) > 6 * PROFILES["HIGH"].sigma) == 0


def test_no_drift_with_bias_zero():
    returns = log_returns(RandomWalk(Decimal("1.0850"), WalkConfig(volatility_mode="MEDIUM"), seed="flat"), 60_000)
    standard_error = statistics.pstdev(returns) / math.sqrt(len(returns))
    assert abs(statistics.fmean(returns)) < 4 * standard_error


@pytest.mark.parametrize("bias", [1.0, 0.5, -0.5, -1.0])
def test_drift_follows_the_bias(bias):
    returns = log_returns(RandomWalk(Decimal("100"), WalkConfig(volatility_mode="HIGH", trend_bias=bias), seed=f"b{bias}"))
    mean = statistics.fmean(returns)
    standard_error = statistics.pstdev(returns) / math.sqrt(len(returns))
    assert math.copysign(1, mean) == math.copysign(1, bias)
    assert abs(mean) > 4 * standard_error
    expected = bias * DRIFT_PER_SIGMA * PROFILES["HIGH"].total_sigma
    assert mean == pytest.approx(expected, abs=4 * standard_error)


def test_same_seed_replays_the_same_prices():
    def path(seed):
        sim = Simulator(seed)
        sim.configure("VOLATILITY_100", WalkConfig("SPIKE", 0.0, 3, Decimal("0.05")), Decimal("100"))
        return [sim.step("VOLATILITY_100", 0.5) for _ in range(500)]

    assert path(42) == path(42)
    assert path(42) != path(43)


def test_each_symbol_has_its_own_stream():
    sim = Simulator(1)
    for symbol in ("A", "B"):
        sim.configure(symbol, WalkConfig(), Decimal("100"))
    assert [sim.step("A", 1) for _ in range(5)] != [sim.step("B", 1) for _ in range(5)]


def test_prices_never_reach_zero_even_under_extreme_pressure():
    walk = RandomWalk(Decimal("0.0001"), WalkConfig(volatility_mode="SPIKE", trend_bias=-1.0, precision=8), seed="crash")
    for _ in range(50_000):
        walk.step(5.0)
        assert walk.price > 0
        quote = walk.quote()
        assert quote.bid > 0 and quote.mid > 0 and quote.ask >= quote.bid


def test_config_change_applies_from_the_next_step():
    walk = RandomWalk(Decimal("100"), WalkConfig(volatility_mode="LOW"), seed="switch")
    low = statistics.pstdev(log_returns(walk, 5000))
    walk.config = WalkConfig(volatility_mode="HIGH")
    high = statistics.pstdev(log_returns(walk, 5000))
    assert low == pytest.approx(PROFILES["LOW"].total_sigma, rel=0.1)
    assert high == pytest.approx(PROFILES["HIGH"].total_sigma, rel=0.1)


def test_quote_rounds_to_precision_and_keeps_the_spread():
    quote = quote_from_mid(1.0850049, 5, Decimal("0.00010"))
    assert quote.mid == Decimal("1.08500")
    assert quote.bid == Decimal("1.08495") and quote.ask == Decimal("1.08506")
    assert quote.ask - quote.bid >= Decimal("0.00010")
    assert quote_from_mid(149.5004, 3, Decimal("0")).bid == Decimal("149.500")
    # half-even on the mid
    assert quote_from_mid(Decimal("2.345"), 2, Decimal("0")).mid == Decimal("2.34")
    assert quote_from_mid(Decimal("2.355"), 2, Decimal("0")).mid == Decimal("2.36")


def test_a_start_price_must_be_positive():
    with pytest.raises(ValueError):
        RandomWalk(Decimal("0"), WalkConfig())
