"""Candles API benchmark: p50/p99 latency of GET /api/markets/<symbol>/candles over a day of
1-second ticks (86,400), on PostgreSQL and on SQLite, through the Flask test client.

    .venv/bin/python -m bench.market_candles
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DAY_START = 1_700_006_400  # a UTC midnight
SYMBOL = "VOLATILITY_25"
REQUESTS = 200
# (resolution, candles per request): the chart asks for ~300; the widest allowed views too
QUERIES = [("1s", 300), ("1s", 5000), ("5s", 300), ("1m", 300), ("1m", 1440), ("5m", 288), ("1h", 24), ("1d", 1)]


def fill(app) -> None:
    from edutradex.extensions import db
    from edutradex.market import candles
    from edutradex.market.models import Tick
    from edutradex.market.service import seed_markets

    rng = random.Random(1)
    with app.app_context():
        seed_markets()
        price = Decimal("100")
        rows = []
        for s in range(86_400):
            price += Decimal(rng.randint(-20, 20)).scaleb(-3)
            rows.append({"symbol": SYMBOL, "ts_ms": (DAY_START + s) * 1000 + 1, "bid": price, "ask": price,
                         "mid": price, "source": "SIM"})
        for i in range(0, len(rows), 5000):
            db.session.execute(db.insert(Tick), rows[i:i + 5000])
        db.session.commit()
        # everything but the last ten minutes aggregated, as the feed would have done
        while candles.aggregate(SYMBOL, (DAY_START + 86_400 - 600) * 1000):
            pass


def measure(app) -> list[tuple[str, int, float, float]]:
    client = app.test_client()
    rng = random.Random(2)
    results = []
    for resolution, count in QUERIES:
        from edutradex.market.candles import RESOLUTIONS

        span = RESOLUTIONS[resolution] * (count - 1)
        timings = []
        for _ in range(REQUESTS):
            start_s = DAY_START + rng.randint(0, max(0, 86_400 - span - 1))
            started = time.perf_counter()
            response = client.get(f"/api/markets/{SYMBOL}/candles?resolution={resolution}&from={start_s}&to={start_s + span}")
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.get_json()
        timings.sort()
        results.append((resolution, count, timings[len(timings) // 2], timings[int(len(timings) * 0.99)]))
    return results


def report(name: str, app) -> None:
    fill(app)
    print(f"{name}: a day of 1 s ticks, {REQUESTS} requests per row")
    print(f"  {'resolution':>10} {'candles':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for resolution, count, p50, p99 in measure(app):
        print(f"  {resolution:>10} {count:>8} {p50:>8.1f} {p99:>8.1f}", flush=True)


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from tests.conftest import build_app
    from tests.support.servers import PostgresServer, ServerUnavailable

    with tempfile.TemporaryDirectory() as tmp:
        report("SQLite", build_app(f"sqlite:///{tmp}/bench.db"))
    try:
        server = PostgresServer().start()
    except ServerUnavailable as exc:
        print(f"PostgreSQL skipped: {exc}")
        return
    try:
        report("PostgreSQL", build_app(server.create_database("bench_candles")))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
