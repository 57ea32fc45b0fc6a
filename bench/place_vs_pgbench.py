"""Placement against what the database itself sustains, in one run on one cluster.

1. A throwaway PostgreSQL cluster configured as the tests configure theirs
   (tests/support/servers.py: fsync, synchronous_commit and full_page_writes off).
2. pgbench on it: `pgbench -i -s BENCH_SCALE`, then `pgbench -c 16 -j 2 -T BENCH_SECONDS`
   (the TPC-B-like transaction: 5 statements).
3. The rise/fall placement bench (bench.binary_place) on the same cluster, against the
   Procfile's processes (BENCH_SHAPE=procfile, the default here: Redis, one `flask feed run`,
   one `flask worker`, BENCH_WEB `python wsgi.py`, production environment; see
   binary_place.Platform), or one embedded web process (BENCH_SHAPE=embedded): BENCH_CLIENTS
   closed-loop keep-alive clients posting the HTMX form for BENCH_SECONDS.
4. The same for CFD market orders (bench.cfd_place, the terminal's ticket), unless BENCH_CFD=0.

Prints each TPS, the ratio placement / pgbench and the p99. Target (issue #15):
placement >= 0.25x pgbench TPS, p99 <= 50 ms.

    .venv/bin/python -m bench.place_vs_pgbench
    BENCH_SECONDS=5 BENCH_CFD=0 .venv/bin/python -m bench.place_vs_pgbench     # a short run

BENCH_SECONDS (15) each run's measured time; BENCH_CLIENTS (16) placement clients (pgbench's -c);
BENCH_SCALE (10) pgbench's scale; BENCH_CFD (1) also the CFD order run; BENCH_SHAPE (procfile);
BENCH_WEB (1) web processes in the procfile shape.
"""

from __future__ import annotations

import os
import re
import subprocess

os.environ.setdefault("BENCH_SHAPE", "procfile")

from bench import binary_place, cfd_place  # noqa: E402
from tests.support.servers import PostgresServer  # noqa: E402

SECONDS = int(os.environ.get("BENCH_SECONDS", "15"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "16"))
SCALE = int(os.environ.get("BENCH_SCALE", "10"))
CFD = os.environ.get("BENCH_CFD", "1") != "0"
RATIO_TARGET = 0.25
P99_TARGET_MS = 50


def pgbench(pg: PostgresServer, seconds: int) -> tuple[float, float]:
    """(TPS, mean latency in ms) of pgbench's TPC-B-like run, 16 clients, 2 threads."""
    binary = str(pg.bindir / "pgbench")
    database = "pgbench"
    pg.create_database(database)
    common = ["-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres"]
    subprocess.run([binary, "-i", "-s", str(SCALE), "-q", *common, database], check=True, capture_output=True)
    out = subprocess.run([binary, "-c", "16", "-j", "2", "-T", str(seconds), *common, database], check=True,
                         capture_output=True, text=True).stdout
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
    latency = float(re.search(r"latency average = ([\d.]+) ms", out).group(1))
    return tps, latency


def verdict(rate: float, tps: float, p99: float) -> str:
    ok = rate >= RATIO_TARGET * tps and p99 <= P99_TARGET_MS
    return (f"{'PASS' if ok else 'SHORT'}: ratio {rate / tps:.3f} (target >= {RATIO_TARGET}), "
            f"p99 {p99:.1f} ms (target <= {P99_TARGET_MS})")


def main() -> None:
    pg = PostgresServer().start()
    try:
        tps, latency = pgbench(pg, SECONDS)
        print(f"shape {os.environ['BENCH_SHAPE']}; load average {os.getloadavg()[0]:.1f} (2 cores: other work "
              "on the machine moves every figure)")
        print(f"pgbench -c 16 -j 2 -T {SECONDS} (scale {SCALE}): {tps:.0f} TPS, latency average {latency:.2f} ms",
              flush=True)
        rise_fall = binary_place.run(pg, SECONDS, CLIENTS)
        print(f"rise/fall, {CLIENTS} clients, {SECONDS}s after {binary_place.WARMUP}s warm-up: "
              f"{rise_fall.line('trades')}", flush=True)
        print(f"  trades in the database {rise_fall.trades}; money adds up: {rise_fall.consistent}")
        print(f"  {verdict(rise_fall.rate, tps, rise_fall.pct(0.99))}", flush=True)
        if CFD:
            orders = cfd_place.run(pg, SECONDS, CLIENTS)
            print(f"CFD market orders, {CLIENTS} clients, {SECONDS}s: {orders.line('orders')}")
            print(f"  positions {orders.trades}, fills {orders.fills}; used margin = positions' margin: "
                  f"{orders.consistent}")
            print(f"  {verdict(orders.rate, tps, orders.pct(0.99))}")
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
