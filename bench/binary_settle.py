"""Settlement on PostgreSQL, two phases, while a simulated feed records a tick per symbol
every 100 ms and moves the tick store's watermark every TICK_FLUSH_INTERVAL_MS, as the
authority does:

1. burst: N trades (default 10,000) of 1,000 users expiring in the same second;
2. singles: one trade per (symbol, second), 3 symbols for 30 s: a lone trade's latency.

Reports how long after its expiry each trade was settled (targets: the whole burst within
1 s, singles within 500 ms at p99) and what the set-based batches cost.

BENCH_SINGLE_SECONDS (default 30; 0 skips the singles). BENCH_WORKER picks where settlement runs:
- unset: the embedded shape (JOBS_MODE=thread): the clock settles in this process;
- ``flask``: the production shape: Redis, the clock here enqueues one RQ job per
  (symbol, second), and BENCH_WORKERS (default 1) real worker processes run the
  Procfile's `worker` command (`flask worker`: the jobs run in the worker process);
- ``flask-fork``: the same with `flask worker --fork` (each job in a fork of the worker);
- ``rq``: the same with a plain `rq worker --with-scheduler` (every job builds the app).

    .venv/bin/python -m bench.binary_settle [trades] [users]
    BENCH_WORKER=flask .venv/bin/python -m bench.binary_settle
"""

from __future__ import annotations

import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, insert, select, update

from config import TestingConfig
from edutradex import create_app, jobs
from edutradex.auth.models import User
from edutradex.binary import settlement
from edutradex.binary.models import Trade
from edutradex.extensions import db
from edutradex.market.models import FeedAuthority, Market, Tick
from edutradex.market.quotes import now_ms
from tests.support.deploy import ROOT, procfile, production_env
from tests.support.servers import PostgresServer, RedisServer

TRADES, USERS = (int(a) for a in (sys.argv[1:] + ["10000", "1000"][len(sys.argv[1:]):]))
SYMBOLS = ("OTC_EUR_USD", "OTC_GBP_USD", "OTC_USD_JPY")
SINGLE_SECONDS = int(os.environ.get("BENCH_SINGLE_SECONDS", "30"))  # 0: the burst only
TICK_EVERY_MS = 100
MAX_SECONDS = 60
PROFILE = bool(os.environ.get("BENCH_PROFILE"))
WORKER = os.environ.get("BENCH_WORKER", "")
WORKERS = int(os.environ.get("BENCH_WORKERS", "1"))
PYSPY = os.environ.get("BENCH_PYSPY")  # a file: py-spy samples the workers and their forks into it
RQ_WORKER = "rq worker --with-scheduler --url $REDIS_URL default"  # the Procfile's line before `flask worker`


def ms_to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def trade_row(n: int, user_id: int, symbol: str, expires_ms: int) -> dict:
    entry_ms = expires_ms - 5000
    return {
        "user_id": user_id, "symbol": symbol, "direction": "UP" if n % 2 else "DOWN",
        "stake": Decimal("10.00"), "payout_percent": Decimal("80.00"), "potential_payout": Decimal("18.00"),
        "entry_price": Decimal("1.08500"), "entry_bid": Decimal("1.08495"), "entry_ask": Decimal("1.08505"),
        "entry_ts_ms": entry_ms, "duration_seconds": 5, "opened_at": ms_to_dt(entry_ms),
        "expires_at": ms_to_dt(expires_ms), "expires_ms": expires_ms, "status": "OPEN",
        "idempotency_key": f"bench-{symbol}-{n:08d}"}


def populate(app) -> list[int]:
    with app.app_context():
        for symbol in SYMBOLS:
            db.session.add(Market(symbol=symbol, name=symbol, market_type="OTC", payout_percent=Decimal("80.00"),
                                  precision=5, spread=Decimal("0.0001"), initial_price=Decimal("1.08500")))
            db.session.add(Tick(symbol=symbol, ts_ms=now_ms() - 10_000, bid=Decimal("1.08495"),
                                ask=Decimal("1.08505"), mid=Decimal("1.08500"), source="bench"))
        db.session.execute(insert(User), [
            {"email": f"u{n}@example.com", "name": f"U{n}", "password_hash": "x", "role": "USER", "active": True,
             "demo_balance": Decimal("10000.00"), "session_nonce": f"{n:016x}"} for n in range(USERS)])
        db.session.commit()
        user_ids = db.session.scalars(select(User.id)).all()
        db.session.remove()
    return user_ids


def add_trades(app, rows: list[dict]) -> None:
    with app.app_context():
        db.session.execute(insert(Trade), rows)
        db.session.commit()
        db.session.remove()


def feed(app, stop: threading.Event) -> None:
    """A tick per symbol every 100 ms, written with the watermark every flush interval, as
    the authority's tick store writes them."""
    rng = random.Random(3)
    mid = Decimal("1.08500")
    flush_every = app.config["TICK_FLUSH_INTERVAL_MS"] / 1000
    buffered, last_flush = [], time.monotonic()
    with app.app_context():
        db.session.merge(FeedAuthority(id=1, epoch=1, clean=False))
        db.session.commit()
        while not stop.is_set():
            mid += Decimal(rng.choice((-2, -1, 0, 1, 2))) / 100000
            ts = now_ms()
            buffered += [{"symbol": symbol, "ts_ms": ts, "bid": mid - Decimal("0.00005"), "ask": mid + Decimal("0.00005"),
                          "mid": mid, "source": "bench"} for symbol in SYMBOLS]
            if time.monotonic() - last_flush >= flush_every - 0.0005:
                db.session.execute(insert(Tick), buffered)
                db.session.execute(update(FeedAuthority).where(FeedAuthority.id == 1).values(flushed_ms=ts))
                db.session.commit()
                settlement.nudge_after_flush(buffered)  # the authority's tick listener: the clock looks now
                buffered, last_flush = [], time.monotonic()
            stop.wait(TICK_EVERY_MS / 1000)
        db.session.remove()


def start_workers(app, database_url: str, redis_url: str, log_dir: Path) -> list[subprocess.Popen]:
    command = {"flask": procfile()["worker"], "flask-fork": procfile()["worker"] + " --fork",
               "rq": RQ_WORKER}[WORKER]
    env = {**os.environ, **production_env(database_url, REDIS_URL=redis_url),
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", os.defpath)])}
    processes = []
    for n in range(WORKERS):
        log = open(log_dir / f"worker-{n}.log", "w")  # noqa: SIM115 - open while the worker runs
        processes.append(subprocess.Popen(["sh", "-c", f"exec {command}"], cwd=ROOT, env=env, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True))
    deadline = time.monotonic() + 60
    with app.app_context():
        while jobs.registered_workers() < WORKERS:
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise RuntimeError(f"the workers did not start: see {log_dir}")
            time.sleep(0.1)
    print(f"{WORKERS} x `{command}` registered (pids {[p.pid for p in processes]}; logs in {log_dir})")
    if PYSPY:
        processes += [subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--subprocesses",
                                        "--format", "raw", "--rate", "200", "--output", f"{PYSPY}.{p.pid}", "--pid",
                                        str(p.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                       start_new_session=True) for p in processes]
    return processes


def stop_workers(processes: list[subprocess.Popen]) -> None:
    for process in reversed(processes):  # py-spy first: SIGINT writes its samples
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT if "py-spy" in str(process.args) else signal.SIGTERM)
    for process in processes:
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def run_clock_until_settled(app) -> None:
    """The settlement clock, as the feed process runs it (enqueueing, with RQ): woken by each
    flush of the ticker, or every SETTLEMENT_INTERVAL_SECONDS."""
    deadline = time.monotonic() + MAX_SECONDS
    with app.app_context():
        while time.monotonic() < deadline:
            settlement.run_clock_cycle()
            db.session.remove()
            left = db.session.scalar(select(func.count()).select_from(Trade).where(Trade.status == "OPEN"))
            db.session.remove()
            if not left:
                return
            settlement.wait_for_due(app, app.config["SETTLEMENT_INTERVAL_SECONDS"])


def lags_of(app, keys_like: str) -> list[int]:
    with app.app_context():
        rows = db.session.execute(select(Trade.expires_ms, Trade.settled_at)
                                  .where(Trade.idempotency_key.like(keys_like))).all()
        db.session.remove()
    return sorted(int(r.settled_at.timestamp() * 1000) - r.expires_ms for r in rows if r.settled_at)


def worker_batches(log_dir: Path) -> list[tuple[int, float]]:
    """(second, seconds running) of each settle_batch job, from the workers' logs."""
    done = re.compile(r"settle_batch\('[^']+', (\d+)\) job in (\d+):(\d+):([\d.]+)s")
    found = []
    for log in log_dir.glob("worker-*.log"):
        for match in done.finditer(log.read_text()):
            second, hours, minutes, seconds = match.groups()
            found.append((int(second), int(hours) * 3600 + int(minutes) * 60 + float(seconds)))
    return found


def report(name: str, lags: list[int], expected: int, target_ms: int, at: str) -> bool:
    p99 = lags[max(0, int(len(lags) * 0.99) - 1)]
    print(f"{name}: settled {len(lags)}/{expected}; after expiry (ms): p50 {statistics.median(lags):.0f}  "
          f"p99 {p99}  max {lags[-1]}")
    worst = lags[-1] if at == "max" else p99
    ok = len(lags) == expected and worst <= target_ms
    print(f"{'PASS' if ok else 'FAIL'}: target {at} <= {target_ms} ms after expiry")
    return ok


def main() -> None:
    if WORKER not in ("", "flask", "flask-fork", "rq"):
        raise SystemExit("BENCH_WORKER must be unset, flask, flask-fork or rq")
    pg = PostgresServer().start()
    redis = RedisServer().start() if WORKER else None
    workers: list[subprocess.Popen] = []
    log_dir = Path(tempfile.mkdtemp(prefix="bench-settle-"))
    stop = threading.Event()
    ticker = None
    try:
        url = pg.create_database("bench_binary_settle")
        mode = ({"REDIS_URL": redis.url, "JOBS_MODE": "rq", "JOBS_IN_PROCESS_WITHOUT_WORKER": False} if WORKER
                else {"JOBS_MODE": "thread"})
        app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=url, **mode)
        with app.app_context():
            db.create_all()
        user_ids = populate(app)
        print(f"shape: {'production, ' + str(WORKERS) + ' ' + WORKER + ' worker(s)' if WORKER else 'embedded (thread)'}")
        if WORKER:
            workers = start_workers(app, url, redis.url, log_dir)
        ticker = threading.Thread(target=feed, args=(app, stop), daemon=True)
        ticker.start()

        batch_times = []
        original = settlement.settle_due_trades

        def timed_settle(symbol, up_to_ms, **options):
            t0 = time.perf_counter()
            if PROFILE:
                import cProfile
                import pstats
                profile = cProfile.Profile()
                result = profile.runcall(original, symbol, up_to_ms, **options)
                if len(result) > 1000:
                    pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
            else:
                result = original(symbol, up_to_ms, **options)
            if result:
                batch_times.append((up_to_ms // 1000, time.perf_counter() - t0))
            return result

        settlement.settle_due_trades = timed_settle
        rng = random.Random(7)

        second = now_ms() // 1000 + 3
        add_trades(app, [trade_row(n, user_ids[n % len(user_ids)], SYMBOLS[0], second * 1000 + rng.randrange(1000))
                         for n in range(TRADES)])
        print(f"burst: {TRADES} trades of {USERS} users expiring in second {second}")
        run_clock_until_settled(app)
        burst_ok = report("burst", lags_of(app, "bench-%"), TRADES, 1000, "max")
        singles_ok = True
        first = now_ms() // 1000 + 2
        singles = [trade_row(TRADES + n, user_ids[n % len(user_ids)], symbol, (first + n) * 1000 + rng.randrange(1000))
                   for n in range(SINGLE_SECONDS) for symbol in SYMBOLS]
        for n, row in enumerate(singles):
            row["idempotency_key"] = f"single-{n:08d}"
        if singles:
            add_trades(app, singles)
            print(f"singles: {len(singles)} trades, one per (symbol, second), {len(SYMBOLS)} symbols for "
                  f"{SINGLE_SECONDS} s")
            run_clock_until_settled(app)
            singles_ok = report("singles", lags_of(app, "single-%"), len(singles), 500, "p99")
        settlement.settle_due_trades = original

        batches = worker_batches(log_dir) if WORKER else batch_times
        for name, times in (("burst", [t for sec, t in batches if sec == second]),
                            ("singles", [t for sec, t in batches if sec != second])):
            if times:
                print(f"{name}: {len(times)} batches settled; each ran p50 "
                      f"{statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms, total "
                      f"{sum(times) * 1000:.0f} ms")
        with app.app_context():
            total = db.session.scalar(select(func.sum(User.demo_balance)))
            paid = db.session.scalar(select(func.sum(Trade.payout))) or Decimal("0")
            db.session.remove()
            db.engine.dispose()
        print(f"balances consistent: {total == Decimal('10000.00') * USERS + paid}")  # stakes not debited by populate
        print("PASS" if burst_ok and singles_ok else "FAIL")
    finally:
        stop.set()
        if ticker is not None:
            ticker.join()
        stop_workers(workers)
        if redis is not None:
            redis.stop()
        pg.stop()


if __name__ == "__main__":
    main()
