"""The ledger's posting function on a throwaway PostgreSQL (and SQLite for comparison).

1. spread:    THREADS threads each crediting their own wallets (adjustments, one commit each);
2. contended: THREADS threads paying entry fees from their wallets into ONE prize pool (every
              posting locks the same platform-account row: the worst case for a competition);
3. verify:    `flask wallet verify`'s check over everything written.
Prints postings/s and latency percentiles per phase. Bounded: SECONDS per phase.

    .venv/bin/python -m bench.wallet_ledger [seconds] [threads]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

from config import TestingConfig
from edutradex import create_app
from edutradex.extensions import db
from edutradex.wallet.ledger import platform_account, post_ledger_entry, wallet_account
from edutradex.wallet.models import EntryType, PlatformAccountKind
from edutradex.wallet.verify import verify_ledger
from tests.support.servers import PostgresServer

SECONDS, THREADS = (int(a) for a in (sys.argv[1:] + ["5", "8"][len(sys.argv[1:]):]))


def build(url: str):
    app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=url,
                     SQLALCHEMY_ENGINE_OPTIONS={"pool_size": THREADS + 2, "max_overflow": 0} if "postgresql" in url else {})
    with app.app_context():
        db.create_all()
        from tests.factories import make_user

        users = [make_user(f"ledger{n}@example.com").id for n in range(THREADS * 4)]
    return app, users


def run(app, users, name: str, posting) -> None:
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + SECONDS

    def worker(index: int) -> None:
        mine = users[index::THREADS]
        n = 0
        with app.app_context():
            while time.monotonic() < stop:
                started = time.perf_counter()
                posting(mine[n % len(mine)], f"{name}:{index}:{n}")
                db.session.commit()
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                n += 1
            db.session.remove()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.monotonic() - began
    cuts = statistics.quantiles(latencies, n=100)
    print(f"  {name:<10} {len(latencies) / took:8.0f} postings/s   p50 {cuts[49] * 1000:6.1f} ms   "
          f"p99 {cuts[98] * 1000:6.1f} ms   ({len(latencies)} postings, {THREADS} threads)", flush=True)


def bench(label: str, url: str) -> None:
    print(f"{label}:", flush=True)
    app, users = build(url)

    def credit(user_id, key):
        post_ledger_entry(EntryType.ADJUSTMENT, Decimal("100.00"), debit=None, credit=wallet_account(user_id),
                          idempotency_key=key, reference="bench", reason="bench")

    def entry_fee(user_id, key):
        post_ledger_entry(EntryType.COMPETITION_ENTRY, Decimal("0.01"), debit=wallet_account(user_id),
                          credit=platform_account(PlatformAccountKind.PRIZE_POOL, "competition:1"),
                          idempotency_key=key, reference="competition:1")

    run(app, users, "spread", credit)
    run(app, users, "contended", entry_fee)
    with app.app_context():
        started = time.perf_counter()
        problems = verify_ledger()
        print(f"  verify     {time.perf_counter() - started:8.2f} s over the ledger, {len(problems)} mismatches", flush=True)
        assert not problems, problems[:5]
        db.session.remove()
        db.engine.dispose()


def main() -> None:
    server = PostgresServer().start()
    try:
        bench("PostgreSQL", server.create_database("bench_wallet"))
    finally:
        server.stop()
    with tempfile.TemporaryDirectory() as folder:
        bench("SQLite (WAL, one writer at a time)", f"sqlite:///{Path(folder) / 'bench.db'}")


if __name__ == "__main__":
    main()
