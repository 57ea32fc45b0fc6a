"""Simulator with committed seeds: ticks per second for 10 markets, before (each walk's own
random.Random) and after (the HMAC-SHA256 stream of fair_rng), in one run. Pure simulator
work: the step and the rounded quote, no clock. A third figure adds the feed's per-tick
bookkeeping (FairnessRecorder.draws_for: tick numbers, the config check, a reservation
written every 600 ticks to a throwaway SQLite database).

    .venv/bin/python -m bench.fairness
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edutradex.market import fair_rng  # noqa: E402
from edutradex.market.simulator import Simulator, WalkConfig  # noqa: E402

MARKETS = [(f"SIM_{i}", ["LOW", "MEDIUM", "HIGH", "SPIKE"][i % 4]) for i in range(10)]
ROUNDS = 5_000  # ticks per market per run
RUNS = 5


def simulator() -> Simulator:
    sim = Simulator(seed=1)
    for symbol, mode in MARKETS:
        sim.configure(symbol, WalkConfig(mode, 0.1, 5, Decimal("0.00020")), Decimal("1.08500"))
    return sim


def before() -> float:
    sim = simulator()
    start = time.perf_counter()
    for _ in range(ROUNDS):
        for symbol, _mode in MARKETS:
            sim.step(symbol, 0.5)  # the walk's own random.Random, as before committed seeds
    return ROUNDS * len(MARKETS) / (time.perf_counter() - start)


def after() -> float:
    sim = simulator()
    seeds = {symbol: random.Random(symbol).randbytes(32) for symbol, _ in MARKETS}
    start = time.perf_counter()
    for n in range(1, ROUNDS + 1):
        for symbol, _mode in MARKETS:
            sim.step(symbol, 0.5, fair_rng.draws(seeds[symbol], symbol, n))
    return ROUNDS * len(MARKETS) / (time.perf_counter() - start)


def with_recorder(app, run: int) -> float:
    from edutradex.market.fairness import FairnessRecorder

    sim = simulator()
    recorder = FairnessRecorder(None, 500)
    now = 1_700_002_800_000 + run * 3_600_000  # an hour boundary: a fresh period per run, 2,500 s long
    with app.app_context():
        for symbol, _ in MARKETS:  # open the periods (seed, commitment, log) outside the timing
            recorder.stepped(symbol, *_first(recorder, sim, symbol, now))
        start = time.perf_counter()
        for i in range(1, ROUNDS + 1):
            ts = now + i * 500
            for symbol, _mode in MARKETS:
                _n, dt, draws = recorder.draws_for(symbol, sim.walks[symbol], ts, ts - 500)
                quote = sim.step(symbol, dt, draws)
                recorder.stepped(symbol, quote.mid, ts)
        return ROUNDS * len(MARKETS) / (time.perf_counter() - start)


def _first(recorder, sim, symbol, now):
    _n, dt, draws = recorder.draws_for(symbol, sim.walks[symbol], now, None)
    return sim.step(symbol, dt, draws).mid, now


def build_app(tmp: str):
    from config import TestingConfig
    from edutradex import create_app
    from edutradex.extensions import db

    app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp}/bench.db", FAIRNESS_PERIOD_SECONDS=3600)
    with app.app_context():
        db.create_all()
    return app


def main() -> None:
    import tempfile

    old, new, fed = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        app = build_app(tmp)
        for run in range(RUNS):  # interleaved, so all see the same machine load
            old.append(before())
            new.append(after())
            fed.append(with_recorder(app, run))
    o, n, f = statistics.median(old), statistics.median(new), statistics.median(fed)
    print(f"10 markets, {ROUNDS} ticks each, median of {RUNS} runs")
    print(f"before (random.Random):      {o:,.0f} ticks/s ({1e6 / o:.1f} us/tick)")
    print(f"after  (HMAC-SHA256 stream): {n:,.0f} ticks/s ({1e6 / n:.1f} us/tick)")
    print(f"after, with the recorder:    {f:,.0f} ticks/s ({1e6 / f:.1f} us/tick)")
    print(f"cost of the committed-seed stream: {1e6 / n - 1e6 / o:+.1f} us/tick ({n / o:.2f}x the throughput); "
          f"the feed makes 20 ticks/s for 10 markets at the default 500 ms interval")


if __name__ == "__main__":
    main()
