"""Alert book (issue #14): the alert engine's per-tick cost with ALERTS (default 100,000)
resting price alerts on ONE symbol (EUR/USD OTC, the worst case: every alert in that symbol's
lists), on a throwaway SQLite database.

1. start: AlertEngine.start() rebuilds its TriggerBook from the database;
2. nothing fires: per-tick cost of AlertEngine.process (the book's pop + the watermark) on
   TICKS ticks random-walking within 0.05 % of 1.08500, while every alert sits 0.2-5 % away
   (ABOVE, BELOW and CROSSING, once and every time). Target: p99 <= 50 us. The book's own
   pop_crossed on the same ticks, and a plain 30-step Python loop timed alike (the machine's
   own noise), for comparison;
3. some fire: 150 ticks stepping up through 300 extra once-alerts, two per level, so each
   tick fires 2: the tick's one transaction (2 conditional UPDATEs, 2 alert_fires rows, the
   watermark, a commit on SQLite) and the live announce. The email job's enqueue is counted,
   not run (in production an RQ enqueue; its sending is the worker's);
4. reconcile: the periodic check (one aggregate row of the ACTIVE alerts) when nothing
   changed, which runs in the feed loop every ALERTS_RECONCILE_SECONDS.

    .venv/bin/python -m bench.alert_book [alerts] [ticks]
"""

from __future__ import annotations

import random
import sys
import time
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import insert

from edutradex.alerts import listener
from edutradex.alerts.models import PriceAlert
from edutradex.extensions import db
from edutradex.market.service import seed_markets
from edutradex.market.store import TickRow
from edutradex.types import utcnow

from .competitions import scratch_app, users

ALERTS, TICKS = (int(a) for a in (sys.argv[1:] + ["100000", "20000"][len(sys.argv[1:]):]))
SYMBOL = "OTC_EUR_USD"
START = Decimal("1.08500")
STEP = Decimal("0.00001")
FIRING_LEVELS = 150  # 1.08560 ... 1.08709, two once-alerts each
TARGET_P99_US = 50.0
D = Decimal


def populate(rng: random.Random) -> None:
    seed_markets()
    owners = users(100, "alerts")
    created = utcnow() - timedelta(minutes=1)
    rows = []
    for n in range(ALERTS):
        away = D(rng.uniform(0.002, 0.05))
        above = n % 2 == 0
        level = (START * (1 + away if above else 1 - away)).quantize(STEP)
        kind = ("ABOVE" if above else "BELOW") if n % 3 else "CROSSING"
        rows.append({"user_id": owners[n % len(owners)], "symbol": SYMBOL, "kind": kind, "level": level,
                     "repeat": n % 5 == 0, "watching": ">=" if above else "<=", "status": "ACTIVE",
                     "created_price": START, "created_at": created, "fire_count": 0, "last_tick_id": 0,
                     "version": 1})
    for n in range(2 * FIRING_LEVELS):
        level = D("1.08560") + STEP * (n // 2)
        rows.append({"user_id": owners[n % len(owners)], "symbol": SYMBOL, "kind": "ABOVE", "level": level,
                     "repeat": False, "watching": ">=", "status": "ACTIVE", "created_price": START,
                     "created_at": created, "fire_count": 0, "last_tick_id": 0, "version": 1})
    for chunk in range(0, len(rows), 20_000):
        db.session.execute(insert(PriceAlert), rows[chunk:chunk + 20_000])
    db.session.commit()


def percentiles(samples_ns: list[int]) -> tuple[float, float, float]:
    ordered = sorted(samples_ns)
    return ordered[len(ordered) // 2] / 1000, ordered[int(len(ordered) * 0.99) - 1] / 1000, ordered[-1] / 1000


def quiet_ticks(rng: random.Random, first_id: int) -> list[TickRow]:
    mid, rows = START, []
    for n in range(TICKS):
        mid += STEP * rng.choice((-3, -2, -1, 0, 1, 2, 3))
        if abs(mid - START) > D("0.00050"):
            mid = START
        rows.append(TickRow(first_id + n, SYMBOL, 1_900_000_000_000 + n * 100, mid - D("0.00005"),
                            mid + D("0.00005"), mid, "BENCH"))
    return rows


def main() -> None:
    rng = random.Random(14)
    emails = []
    listener.enqueue_email = emails.append  # counted, not run (see the module's note)
    with scratch_app(populate, rng) as app:
        engine = listener.AlertEngine(app)
        t0 = time.perf_counter()
        engine.start()
        print(f"start: {len(engine.book):,} alerts on {SYMBOL} rebuilt into the book in "
              f"{(time.perf_counter() - t0) * 1000:.0f} ms")

        rows = quiet_ticks(rng, 10_000_000)
        for row in rows[:1000]:  # warm up (the same ticks are timed below: their ids are past now)
            engine.book.pop_crossed(SYMBOL, row.mid, row.mid)
        clock = time.perf_counter_ns
        engine_ns, book_ns, reference_ns = [], [], []
        for row in rows:
            t = clock()
            engine.process(row)
            engine_ns.append(clock() - t)
            t = clock()
            fired = engine.book.pop_crossed(SYMBOL, row.mid, row.mid)
            book_ns.append(clock() - t)
            t = clock()
            total = 0
            for step in range(30):
                total += step
            reference_ns.append(clock() - t)
            if fired:
                raise SystemExit("a quiet tick crossed an alert: the levels are not where they should be")
        if engine.fired:
            raise SystemExit(f"{engine.fired} alerts fired on the quiet ticks")

        last = rows[-1].id
        firing = [TickRow(last + 1 + n, SYMBOL, 1_900_000_100_000 + n * 100, level - D("0.00005"),
                          level + D("0.00005"), level, "BENCH")
                  for n, level in enumerate(D("1.08560") + STEP * i for i in range(FIRING_LEVELS))]
        fire_ns = []
        for row in firing:
            t = clock()
            engine.process(row)
            fire_ns.append(clock() - t)
        fired = engine.fired
        t0 = time.perf_counter()
        engine.reconcile()
        reconcile_ms = (time.perf_counter() - t0) * 1000
        engine.active = False

    print(f"{'what':<46} {'ticks':>6} {'p50 us':>9} {'p99 us':>9} {'max us':>10}")
    for what, samples in (("AlertEngine.process, nothing fires", engine_ns),
                          ("TriggerBook.pop_crossed alone, nothing fires", book_ns),
                          ("reference: a 30-step Python loop", reference_ns),
                          ("AlertEngine.process, 2 fire per tick (SQLite)", fire_ns)):
        p50, p99, worst = percentiles(samples)
        print(f"{what:<46} {len(samples):>6} {p50:>9.1f} {p99:>9.1f} {worst:>10.1f}")
    print(f"fired {fired} alerts ({len(emails)} email jobs enqueued) on {len(firing)} ticks; "
          f"{ALERTS:,} quiet alerts untouched")
    print(f"reconcile (nothing changed, {ALERTS:,} alerts: one aggregate row): {reconcile_ms:.0f} ms")
    p99 = percentiles(engine_ns)[1]
    print(f"{'PASS' if p99 <= TARGET_P99_US else 'FAIL'}: per-tick p99 when nothing fires {p99:.1f} us "
          f"(target <= {TARGET_P99_US:.0f} us) with {ALERTS:,} alerts")


if __name__ == "__main__":
    main()
