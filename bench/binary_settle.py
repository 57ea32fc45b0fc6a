"""Settlement burst on PostgreSQL: N trades (default 10,000) of 1,000 users expiring in the
same second, settled by the settlement clock (run_clock_cycle every 200 ms) while a
simulated feed records a tick every 100 ms. Reports how long after its expiry each trade
was settled (target: all within 1 s) and how long the set-based batches took.

    .venv/bin/python -m bench.binary_settle [trades] [users]
"""

from __future__ import annotations

import random
import statistics
import sys
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import func, insert, select

from config import TestingConfig
from edutradex import create_app
from edutradex.auth.models import User
from edutradex.binary import settlement
from edutradex.binary.models import Trade
from edutradex.extensions import db
from edutradex.market.models import Market, Tick
from edutradex.market.quotes import now_ms
from tests.support.servers import PostgresServer

TRADES, USERS = (int(a) for a in (sys.argv[1:] + ["10000", "1000"][len(sys.argv[1:]):]))
SYMBOL = "OTC_EUR_USD"
TICK_EVERY_MS = 100
MAX_SECONDS = 30
PROFILE = bool(__import__("os").environ.get("BENCH_PROFILE"))


def ms_to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def populate(app, expiry_second: int) -> None:
    rng = random.Random(7)
    with app.app_context():
        db.session.add(Market(symbol=SYMBOL, name="EUR/USD OTC", market_type="OTC", payout_percent=Decimal("80.00"),
                              precision=5, spread=Decimal("0.0001"), initial_price=Decimal("1.08500")))
        db.session.execute(insert(User), [
            {"email": f"u{n}@example.com", "name": f"U{n}", "password_hash": "x", "role": "USER", "active": True,
             "demo_balance": Decimal("10000.00"), "session_nonce": f"{n:016x}"} for n in range(USERS)])
        user_ids = db.session.scalars(select(User.id)).all()
        entry_ms = expiry_second * 1000 - 5000
        db.session.add(Tick(symbol=SYMBOL, ts_ms=entry_ms, bid=Decimal("1.08495"), ask=Decimal("1.08505"),
                            mid=Decimal("1.08500"), source="bench"))
        rows = []
        for n in range(TRADES):
            expires_ms = expiry_second * 1000 + rng.randrange(1000)  # all in the same second
            rows.append({
                "user_id": user_ids[n % len(user_ids)], "symbol": SYMBOL, "direction": "UP" if n % 2 else "DOWN",
                "stake": Decimal("10.00"), "payout_percent": Decimal("80.00"), "potential_payout": Decimal("18.00"),
                "entry_price": Decimal("1.08500"), "entry_bid": Decimal("1.08495"), "entry_ask": Decimal("1.08505"),
                "entry_ts_ms": entry_ms, "duration_seconds": 5, "opened_at": ms_to_dt(entry_ms),
                "expires_at": ms_to_dt(expires_ms), "expires_ms": expires_ms, "status": "OPEN",
                "idempotency_key": f"burst-{n:08d}"})
        db.session.execute(insert(Trade), rows)
        db.session.commit()


def feed(app, stop: threading.Event) -> None:
    """A tick every 100 ms, as the authority would record it."""
    rng = random.Random(3)
    mid = Decimal("1.08500")
    with app.app_context():
        while not stop.is_set():
            mid += Decimal(rng.choice((-2, -1, 0, 1, 2))) / 100000
            db.session.add(Tick(symbol=SYMBOL, ts_ms=now_ms(), bid=mid - Decimal("0.00005"),
                                ask=mid + Decimal("0.00005"), mid=mid, source="bench"))
            db.session.commit()
            stop.wait(TICK_EVERY_MS / 1000)
        db.session.remove()


def main() -> None:
    pg = PostgresServer().start()
    try:
        url = pg.create_database("bench_binary_settle")
        app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=url, JOBS_MODE="thread")
        with app.app_context():
            db.create_all()
        expiry_second = now_ms() // 1000 + 4
        started = time.perf_counter()
        populate(app, expiry_second)
        print(f"{TRADES} trades of {USERS} users expiring in second {expiry_second} "
              f"(populated in {time.perf_counter() - started:.1f}s)")

        stop = threading.Event()
        ticker = threading.Thread(target=feed, args=(app, stop), daemon=True)
        ticker.start()
        batch_times = []
        original = settlement.settle_due_trades

        def timed_settle(symbol, up_to_ms):
            t0 = time.perf_counter()
            if PROFILE:
                import cProfile
                import pstats
                profile = cProfile.Profile()
                result = profile.runcall(original, symbol, up_to_ms)
                if len(result) > 1000:
                    pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
            else:
                result = original(symbol, up_to_ms)
            if result:
                batch_times.append((time.perf_counter() - t0, len(result)))
            return result

        settlement.settle_due_trades = timed_settle
        deadline = time.monotonic() + MAX_SECONDS
        with app.app_context():
            while time.monotonic() < deadline:
                settlement.run_clock_cycle()
                db.session.remove()
                left = db.session.scalar(select(func.count()).select_from(Trade).where(Trade.status == "OPEN"))
                db.session.remove()
                if not left:
                    break
                time.sleep(app.config["SETTLEMENT_INTERVAL_SECONDS"])
        stop.set()
        ticker.join()
        settlement.settle_due_trades = original

        with app.app_context():
            rows = db.session.execute(select(Trade.expires_ms, Trade.settled_at, Trade.status)).all()
            lags = sorted(int(r.settled_at.timestamp() * 1000) - r.expires_ms for r in rows if r.settled_at)
            settled = len(lags)
            total = db.session.scalar(select(func.sum(User.demo_balance)))
            paid = db.session.scalar(select(func.sum(Trade.payout)))
            db.session.remove()
            db.engine.dispose()
        expected = Decimal("10000.00") * USERS + paid  # stakes were not debited by populate()
        print(f"settled {settled}/{TRADES}; balances consistent: {total == expected}")
        print(f"settled after expiry (ms): p50 {statistics.median(lags):.0f}  p99 {lags[int(len(lags) * 0.99) - 1]}"
              f"  max {lags[-1]}")
        print(f"batches: {len(batch_times)}; largest {max(n for _, n in batch_times)} trades in "
              f"{max(t for t, _ in batch_times) * 1000:.0f} ms; total settle time "
              f"{sum(t for t, _ in batch_times) * 1000:.0f} ms")
        verdict = "PASS" if settled == TRADES and lags[-1] <= 1000 else "FAIL"
        print(f"{verdict}: target all {TRADES} settled within 1000 ms of expiry")
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
