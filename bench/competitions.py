"""Competitions on a throwaway PostgreSQL.

1. settle: a competition of PARTICIPANTS (default 10,000) traders with random final equities
   (ties included, 10 % without a trade) is ended (standings from the database) and settled
   (fee, prizes through the ledger, leftover), timed; target <= 5 s. Then `wallet verify`.
2. joins:  JOINS (default 1,000) joins spread over 10 competitions of 100 seats, from 32
   threads, each join one transaction through join_competition; joins/s and latency
   percentiles.

    .venv/bin/python -m bench.competitions [participants] [joins] [threads] [prize ranks]
"""

from __future__ import annotations

import contextlib
import queue
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal

from flask import Flask
from sqlalchemy import func, insert, select

from config import TestingConfig
from edutradex import create_app
from edutradex.auth.models import User
from edutradex.competitions import lifecycle, service
from edutradex.competitions.models import Competition, Participant
from edutradex.extensions import db
from edutradex.types import utcnow
from edutradex.wallet.ledger import platform_account, post_ledger_entry, wallet_account
from edutradex.wallet.models import EntryType, PlatformAccountKind, Wallet
from edutradex.wallet.verify import verify_ledger
from tests.support.servers import PostgresServer

PARTICIPANTS, JOINS, THREADS, RANKS = (
    int(a) for a in (sys.argv[1:] + ["10000", "1000", "32", "20"][len(sys.argv[1:]):]))
FEE = Decimal("10.00")
# 20 ranks by default (72 % paid: 30/15/10/5/5/4/4/3/3/3, then 1 % each); more ranks share 90 %.
TABLE = ({1: "30", 2: "15", 3: "10", 4: "5", 5: "5", 6: "4", 7: "4", 8: "3", 9: "3", 10: "3",
          **{rank: "1" for rank in range(11, 21)}} if RANKS == 20
         else {rank: str((Decimal(90) / RANKS).quantize(Decimal("0.01"), rounding="ROUND_DOWN"))
               for rank in range(1, RANKS + 1)})


def users(count: int, tag: str) -> list[int]:
    first = db.session.scalar(select(func.coalesce(func.max(User.id), 0)))
    db.session.execute(insert(User), [
        {"email": f"{tag}{first + n}@example.com", "name": f"{tag} {n}", "password_hash": "x", "role": "USER",
         "active": True, "demo_balance": Decimal("10000.00"), "session_nonce": f"{first + n:016x}"}
        for n in range(count)])
    db.session.commit()
    return list(db.session.scalars(select(User.id).where(User.id > first).order_by(User.id)))


@contextlib.contextmanager
def scratch_app(populate: Callable[[random.Random], None], rng: random.Random) -> Iterator[Flask]:
    """A throwaway SQLite database, its tables created and filled by `populate(rng)`; yields
    the app inside its app context (the engine benchmarks' setup: cfd_engine, alert_book)."""
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp}/bench.db")
        with app.app_context():
            db.create_all()
            populate(rng)
            db.session.remove()
            yield app


def terms(name: str, seats: int) -> dict:
    now = utcnow().replace(microsecond=0)
    return {"name": name, "entry_fee": str(FEE), "min_participants": 1, "max_participants": seats,
            "registration_opens_at": now - timedelta(hours=1), "registration_closes_at": now + timedelta(hours=1),
            "start_at": now + timedelta(hours=1), "end_at": now + timedelta(hours=2),
            "platform_fee_percent": "10", "prize_table": TABLE}


def bench_settle(app) -> None:
    rng = random.Random(11)
    with app.app_context():
        competition = service.create_competition(terms("Settlement bench", PARTICIPANTS))
        service.publish_competition(competition.id)
        ids = users(PARTICIPANTS, "settle")
        rows = []
        for user_id in ids:
            equity = Decimal(rng.randrange(500_000, 2_000_000, 25)) / 100  # steps of 0.25: many ties
            rows.append({"competition_id": competition.id, "user_id": user_id, "status": "ACTIVE", "entry_number": 1,
                         "joined_at": utcnow(), "fees_paid": FEE, "cash": equity, "equity": equity,
                         "trades_count": 0 if rng.random() < 0.1 else rng.randrange(1, 50), "rebuys": 0,
                         "disqualified": False})
        db.session.execute(insert(Participant), rows)
        # the fees, as the joins would have put them in the pool (one posting instead of 10,000)
        post_ledger_entry(EntryType.ADJUSTMENT, FEE * PARTICIPANTS, debit=None,
                          credit=platform_account(PlatformAccountKind.PRIZE_POOL, f"competition:{competition.id}"),
                          idempotency_key="bench-pool", reference=f"competition:{competition.id}", reason="bench")
        db.session.execute(Competition.__table__.update().where(Competition.id == competition.id).values(
            seats_taken=PARTICIPANTS, has_had_entrants=True))
        db.session.commit()
        lifecycle.start_competition(competition.id, competition.start_at)
        cid, end = competition.id, competition.end_at
        db.session.remove()

        t0 = time.perf_counter()
        assert lifecycle.end_competition(cid, end)
        t1 = time.perf_counter()
        split = lifecycle.settle_competition(cid, end)
        t2 = time.perf_counter()
        db.session.remove()
        winners = len(split.prizes)
        print(f"settle: {PARTICIPANTS} participants, pool {split.pool}: fee {split.fee}, {winners} winners paid "
              f"{split.paid}, leftover {split.leftover}")
        print(f"settle: end + standings {(t1 - t0) * 1000:.0f} ms, settlement (ranks + prizes) "
              f"{(t2 - t1) * 1000:.0f} ms, total {(t2 - t0) * 1000:.0f} ms")
        t3 = time.perf_counter()
        problems = verify_ledger()
        print(f"settle: wallet verify {len(problems)} problem(s) in {(time.perf_counter() - t3) * 1000:.0f} ms")
        verdict = "PASS" if t2 - t0 <= 5 and not problems else "FAIL"
        print(f"{verdict}: target end + settle of {PARTICIPANTS} participants <= 5 s")
        db.session.remove()


def bench_joins(app) -> None:
    with app.app_context():
        competitions = []
        for n in range(10):
            competition = service.create_competition(terms(f"Join bench {n}", (JOINS + 9) // 10))
            competitions.append(service.publish_competition(competition.id).id)
        ids = users(JOINS, "join")
        for user_id in ids:
            post_ledger_entry(EntryType.ADJUSTMENT, Decimal("50.00"), debit=None, credit=wallet_account(user_id),
                              idempotency_key=f"bench-fund:{user_id}", reference=f"user:{user_id}", reason="bench")
        db.session.commit()
        db.session.remove()
    work: queue.Queue = queue.Queue()
    for n, user_id in enumerate(ids):
        work.put((competitions[n % 10], user_id))
    latencies: list[float] = []
    errors: list[Exception] = []
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS)

    def worker() -> None:
        with app.app_context():
            barrier.wait()
            while True:
                try:
                    competition_id, user_id = work.get_nowait()
                except queue.Empty:
                    break
                t0 = time.perf_counter()
                try:
                    service.join_competition(competition_id, user_id)
                except Exception as exc:  # noqa: BLE001 - counted and shown
                    with lock:
                        errors.append(exc)
                with lock:
                    latencies.append(time.perf_counter() - t0)
            db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    ms = [x * 1000 for x in latencies]
    print(f"joins: {len(latencies)} over 10 competitions from {THREADS} threads in {elapsed:.2f} s: "
          f"{len(latencies) / elapsed:.0f} joins/s; latency p50 {statistics.median(ms):.1f} ms  "
          f"p99 {ms[int(len(ms) * 0.99) - 1]:.1f} ms  max {ms[-1]:.1f} ms; errors {len(errors)}"
          + (f" (first: {errors[0]!r})" if errors else ""))
    with app.app_context():
        seats = db.session.scalar(select(func.sum(Competition.seats_taken)).where(Competition.id.in_(competitions)))
        negative = db.session.scalar(select(func.count()).where(Wallet.balance < 0))
        problems = verify_ledger()
        print(f"joins: seats taken {seats}, negative wallets {negative}, wallet verify {len(problems)} problem(s)")
        db.session.remove()


def main() -> None:
    pg = PostgresServer().start()
    try:
        url = pg.create_database("bench_competitions")
        app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=url, JOBS_MODE="sync",
                         SQLALCHEMY_ENGINE_OPTIONS={"pool_size": THREADS + 2, "max_overflow": 0})
        with app.app_context():
            db.create_all()
        bench_settle(app)
        bench_joins(app)
        with app.app_context():
            db.engine.dispose()
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
