"""Tick ingest benchmark: ticks/s the tick store persists on PostgreSQL (a throwaway server,
as in the tests), through the feed's batched writer (one INSERT per batch).

    .venv/bin/python -m bench.market_ingest
"""

from __future__ import annotations

import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TICKS = 200_000
SYMBOLS = [f"SYM_{i}" for i in range(10)]


def run(app, batch: int) -> float:
    from edutradex.extensions import db
    from edutradex.market.store import TickIds, TickRow, TickWriter

    writer = TickWriter(flush_interval=3600, max_batch=batch)
    ids = TickIds()  # as the feed does: ids reserved a block at a time
    with app.app_context():
        db.session.execute(db.text("TRUNCATE ticks"))
        db.session.commit()
        start = time.perf_counter()
        ts = 1_700_000_000_000
        for i in range(TICKS):
            mid = Decimal(100_000 + i % 977).scaleb(-3)
            writer.add(TickRow(ids.next(), SYMBOLS[i % len(SYMBOLS)], ts + i, mid, mid, mid, "SIM"))
            if writer.due():
                writer.flush()
        writer.flush()
        elapsed = time.perf_counter() - start
        stored = db.session.scalar(db.text("SELECT count(*) FROM ticks"))
        assert stored == TICKS, stored
    return TICKS / elapsed


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from tests.conftest import build_app
    from tests.support.servers import PostgresServer

    server = PostgresServer().start()
    try:
        app = build_app(server.create_database("bench_ingest"))
        print(f"PostgreSQL, {TICKS} ticks over {len(SYMBOLS)} symbols, batched writer (one INSERT per batch)")
        for batch in (100, 500, 2000):
            print(f"  batch {batch:>5}: {run(app, batch):>9,.0f} ticks/s", flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
