"""Production-shape soak: the Procfile's processes as a host runs them, under load, for
minutes, looking for errors, creep and leaks.

What runs: a throwaway PostgreSQL and redis-server; the Procfile's `release`, then one
`feed`, one `worker` and two `web` processes (the two share one port with WEB_REUSE_PORT=1,
as `WEB_CONCURRENCY`-style processes behind one listener would: the kernel spreads the
connections; Socket.IO clients here speak WebSocket only, so no sticky sessions are
needed, and the rooms reach both processes over Redis).

The load, for SOAK_SECONDS (default 600):
- SOAK_CLIENTS (default 2,000) Socket.IO clients watching the markets board (the lean
  client of bench.market_fanout, in 4 processes), each counting tick frames and the delay
  from a tick's server time to its arrival;
- rise/fall trades placed open-loop over HTTP (the HTMX form, the sessions of
  bench.binary_place) at SOAK_RATE per second; 0 (the default) measures the capacity first
  with bench.binary_place's closed loop for SOAK_PROBE_SECONDS and places at half of it.
  Trades last 5 s, so the worker settles all along.

Reported per minute: placements, errors (must be 0), placement p99, tick frames and
delivery p99, settlement lag after expiry p99 (from the database); from /metrics when the
app serves it (a scrape per minute, with the health token). Memory (RSS) of each process
idle, once every watcher is connected (the start: 1,000 WebSockets cost a web process
~70 MB), each minute and at the end; growth from the start beyond 10 % is flagged. At the end: every trade settled
exactly once (no OPEN trade left, balances + stakes - payouts = the starting balances) and
`flask wallet verify` clean.

    .venv/bin/python -m bench.soak                      # 10 minutes
    SOAK_SECONDS=60 SOAK_CLIENTS=500 .venv/bin/python -m bench.soak   # a short run

Cookies: the processes run with EDUTRADEX_ENV=development on purpose, as tests/test_single_dyno.py
does: the clients talk plain HTTP, and production's Secure cookies would not come back over
it. RATELIMIT_ENABLED=0: the load comes from 96 users on one address.
"""

from __future__ import annotations

import asyncio
import http.client
import multiprocessing
import os
import re
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

from bench.binary_place import CLIENTS, PROCESSES, USERS_PER_CLIENT, client_process, prepare, sign_in, trade_form
from bench.market_fanout import lean_client_main, percentile
from tests.support.deploy import ROOT, procfile, production_env, run_release
from tests.support.servers import PostgresServer, RedisServer, free_port

SECONDS = int(os.environ.get("SOAK_SECONDS", "600"))
WATCHERS = int(os.environ.get("SOAK_CLIENTS", "2000"))
RATE = float(os.environ.get("SOAK_RATE", "0"))
PROBE_SECONDS = int(os.environ.get("SOAK_PROBE_SECONDS", "10"))
WATCHER_PROCESSES = 4
PLACERS = 16  # open-loop connections, in PROCESSES processes
HEALTH_TOKEN = "soak-health-token"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start(name: str, env: dict, logs: Path) -> subprocess.Popen:
    """A Procfile line as the host runs it: through a shell, this virtualenv first on the PATH
    (`exec`, so the process measured is the app, not the shell)."""
    path = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", os.defpath)])
    return subprocess.Popen(["sh", "-c", "exec " + procfile()[name]], cwd=ROOT, env={**env, "PATH": path},
                            stdout=(logs / f"{name}-{time.monotonic_ns()}.log").open("wb"), stderr=subprocess.STDOUT)


def wait_until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"timed out waiting for {what}")


# ---- the open-loop placers ------------------------------------------------------------------

def placer_process(port: int, sessions: list, rate: float, start_at: float, stop_at: float, queue) -> None:
    """Each connection posts at its share of `rate`, on a schedule that does not wait for the
    answers (open loop: a slow answer does not slow the offered load). Puts per minute:
    [latencies of the 200s, statuses / exceptions of the rest], and the first refusal's text."""
    minutes: dict[int, list] = {}
    said: list[str] = []
    lock = threading.Lock()

    def connection(index: int, users: list[tuple[str, str]]) -> None:
        every = len(sessions) / (rate / PROCESSES)
        due = start_at + index * every / len(sessions)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        n = 0
        while due < stop_at:
            time.sleep(max(0.0, due - time.time()))
            n += 1
            cookie, token = users[n % len(users)]
            minute = int((due - start_at) // 60)
            began = time.time()
            try:
                conn.request("POST", "/trade/place", body=trade_form(f"s{os.getpid()}-{index}-{n}", n),
                             headers={"Cookie": cookie, "X-CSRFToken": token, "HX-Request": "true",
                                      "Content-Type": "application/x-www-form-urlencoded"})
                response = conn.getresponse()
                body = response.read()
                outcome = response.status
            except (OSError, http.client.HTTPException) as exc:
                outcome, body = type(exc).__name__, b""
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            with lock:
                bucket = minutes.setdefault(minute, [[], []])
                if outcome == 200:
                    bucket[0].append(time.time() - began)
                else:
                    bucket[1].append(outcome)
                    if not said:
                        said.append(f"{outcome}: " + " ".join(re.sub(r"<[^>]+>", " ", body.decode(errors="replace")).split())[:200])
            due += every
        conn.close()

    threads = [threading.Thread(target=connection, args=(i, users)) for i, users in enumerate(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    queue.put((minutes, said[0] if said else ""))


def watcher_process(url: str, count: int, start_at: float, seconds: float, queue) -> None:
    queue.put(asyncio.run(lean_client_main(url, count, start_at, seconds, per_minute=True)))


# ---- the run ----------------------------------------------------------------------------

def probe_capacity(port: int, sessions: list) -> float:
    """bench.binary_place's closed loop for PROBE_SECONDS: placements per second."""
    queue = multiprocessing.Queue()
    start_at = time.time() + 1
    warm_until, stop_at = start_at + 2, start_at + 2 + PROBE_SECONDS
    procs = [multiprocessing.Process(target=client_process, args=(port, sessions[i::PROCESSES], start_at, stop_at,
                                                                  warm_until, queue)) for i in range(PROCESSES)]
    for proc in procs:
        proc.start()
    placed = sum(len(queue.get(timeout=PROBE_SECONDS + 60)[0]) for _ in procs)
    for proc in procs:
        proc.join()
    return placed / PROBE_SECONDS


def scrape(base: str) -> dict[str, float]:
    """/metrics (when the app serves it) as {name: value}: counters and histogram sums and
    counts added up over their label sets, gauges too, except the tick age (the oldest)."""
    try:
        response = requests.get(base + "/metrics", headers={"Authorization": f"Bearer {HEALTH_TOKEN}"}, timeout=10)
    except requests.RequestException:
        return {}
    if response.status_code != 200:
        return {}
    totals: dict[str, float] = {}
    for line in response.text.splitlines():
        if not line or line.startswith("#") or "_bucket{" in line or "_created" in line:
            continue
        name, _, value = line.rpartition(" ")
        name = name.split("{", 1)[0]
        try:
            number = float(value)
        except ValueError:
            continue
        if name == "edutradex_feed_tick_age_seconds":
            totals[name] = max(totals.get(name, 0.0), number)
        else:
            totals[name] = totals.get(name, 0.0) + number
    return totals


METRICS_COLUMNS = (  # (heading, per-minute figure from two consecutive scrapes)
    ("placed/min", lambda a, b: b.get("edutradex_placements_total", 0) - a.get("edutradex_placements_total", 0)),
    ("settled/min", lambda a, b: b.get("edutradex_settlements_total", 0) - a.get("edutradex_settlements_total", 0)),
    ("lag mean ms", lambda a, b: 1000 * (b.get("edutradex_settlement_lag_seconds_sum", 0)
                                         - a.get("edutradex_settlement_lag_seconds_sum", 0))
     / max(1.0, b.get("edutradex_settlement_lag_seconds_count", 0) - a.get("edutradex_settlement_lag_seconds_count", 0))),
    ("sio clients", lambda a, b: b.get("edutradex_socketio_clients", float("nan"))),
    ("emits/s", lambda a, b: (b.get("edutradex_socketio_emits_total", 0) - a.get("edutradex_socketio_emits_total", 0)) / 60),
    ("tick age s", lambda a, b: b.get("edutradex_feed_tick_age_seconds", float("nan"))),
    ("rq depth", lambda a, b: b.get("edutradex_rq_queue_depth", float("nan"))),
    ("rq failed", lambda a, b: b.get("edutradex_rq_failed_jobs", float("nan"))),
)


def settlement_lags(db_url: str, start_at: float) -> dict[int, list[float]]:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT expires_ms, EXTRACT(EPOCH FROM settled_at) * 1000 FROM trades "
                                     "WHERE settled_at IS NOT NULL")).all()
    finally:
        engine.dispose()
    lags: dict[int, list[float]] = {}
    for expires_ms, settled_ms in rows:
        minute = int((expires_ms / 1000 - start_at) // 60)
        if minute >= 0:
            lags.setdefault(minute, []).append(float(settled_ms) - expires_ms)
    return lags


def books(db_url: str) -> tuple[int, int, bool]:
    """(trades, still open, balances + stakes - payouts == starting balances)."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            trades, still_open, staked, paid, balances, users = conn.execute(text(
                "SELECT (SELECT count(*) FROM trades), (SELECT count(*) FROM trades WHERE status = 'OPEN'), "
                "(SELECT coalesce(sum(stake), 0) FROM trades), (SELECT coalesce(sum(payout), 0) FROM trades), "
                "(SELECT sum(demo_balance) FROM users WHERE email LIKE 'bench%'), "
                "(SELECT count(*) FROM users WHERE email LIKE 'bench%')")).one()
    finally:
        engine.dispose()
    return trades, still_open, balances + staked - paid == Decimal("10000.00") * users


def main() -> None:
    pg, redis = PostgresServer().start(), RedisServer().start()
    processes: dict[str, subprocess.Popen] = {}
    try:
        db_url = pg.create_database("soak")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        logs = Path(pg.base)
        samples = logs / "prometheus"  # every process writes its samples here; one scrape adds them up
        samples.mkdir()
        env = {**{k: v for k, v in os.environ.items() if k != "REDIS_URL"},
               **production_env(db_url, REDIS_URL=redis.url, EDUTRADEX_ENV="development", RATELIMIT_ENABLED="0",
                                PORT=str(port), HOST="127.0.0.1", WEB_REUSE_PORT="1", HEALTHZ_TOKEN=HEALTH_TOKEN,
                                PROMETHEUS_MULTIPROC_DIR=str(samples))}
        run_release(env)
        prepare(db_url)  # the bench users (bench.binary_place), with a higher open-trade limit
        processes["feed"] = start("feed", env, logs)
        processes["worker"] = start("worker", env, logs)
        processes["web-1"] = start("web", env, logs)
        processes["web-2"] = start("web", env, logs)
        wait_until(lambda: requests.get(base + "/api/markets/OTC_EUR_USD/quote", timeout=2).json().get("status") == "live",
                   90, "a live quote through the web processes")
        signed_in = [sign_in(base, n) for n in range(CLIENTS * USERS_PER_CLIENT)]
        sessions = [signed_in[i::CLIENTS] for i in range(CLIENTS)]

        rate = RATE
        if not rate:
            capacity = probe_capacity(port, sessions)
            rate = max(1.0, capacity / 2)
            print(f"capacity (closed loop, {CLIENTS} connections, {PROBE_SECONDS}s): {capacity:.0f} placements/s; "
                  f"the soak places at half: {rate:.0f}/s", flush=True)
        time.sleep(6)  # the probe's trades settle
        memory_idle = {name: rss_mb(p.pid) for name, p in processes.items()}

        start_at = time.time() + 5 + WATCHERS / 150  # everyone connected first
        stop_at = start_at + SECONDS
        queue = multiprocessing.Queue()
        per = [WATCHERS // WATCHER_PROCESSES + (1 if i < WATCHERS % WATCHER_PROCESSES else 0) for i in range(WATCHER_PROCESSES)]
        watchers = [multiprocessing.Process(target=watcher_process, args=(base, n, start_at, SECONDS, queue)) for n in per if n]
        placer_sessions = [signed_in[i::PLACERS] for i in range(PLACERS)]
        placers = [multiprocessing.Process(target=placer_process, args=(port, placer_sessions[i::PROCESSES], rate, start_at,
                                                                        stop_at, queue)) for i in range(PROCESSES)]
        for proc in watchers + placers:
            proc.start()
        print(f"soak: {SECONDS}s, {WATCHERS} board watchers, {rate:.0f} placements/s open loop, processes "
              f"{', '.join(processes)}; {os.cpu_count()} cores", flush=True)
        time.sleep(max(0.0, start_at + 5 - time.time()))  # everyone connected and placing: the start figures
        memory_start = {name: rss_mb(p.pid) for name, p in processes.items()}
        memory_minutes: list[dict[str, float]] = []
        scrapes: list[dict[str, float]] = [scrape(base)]
        while time.time() < stop_at:
            time.sleep(min(60.0, max(0.0, stop_at - time.time())))
            scrapes.append(scrape(base))
            memory_minutes.append({name: rss_mb(p.pid) for name, p in processes.items()})
            dead = [name for name, p in processes.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(f"process(es) exited during the soak: {dead} (logs in {logs})")
            print(f"  {int((time.time() - start_at) // 60)} min", flush=True)

        results = [queue.get(timeout=120) for _ in watchers + placers]
        for proc in watchers + placers:
            proc.join()
        memory_end = {name: rss_mb(p.pid) for name, p in processes.items()}
        wait_until(lambda: books(db_url)[1] == 0, 60, "every trade settled")

        watched = [r for r in results if isinstance(r, dict)]
        placed = [r for r in results if isinstance(r, tuple)]
        lags = settlement_lags(db_url, start_at)
        connected = sum(w["connected"] for w in watched)
        print(f"\nwatchers connected: {connected} of {WATCHERS}")
        print(f"{'min':>4} {'placed':>7} {'errors':>6} {'place p99 ms':>12} {'frames':>9} {'tick p99 ms':>11} "
              f"{'settle p99 ms':>13}")
        errors_total, p99s = 0, []
        first_refusal = next((said for _, said in placed if said), "")
        for minute in range((SECONDS + 59) // 60):
            latencies = [v for minutes, _ in placed for v in minutes.get(minute, [[], []])[0]]
            errors = [v for minutes, _ in placed for v in minutes.get(minute, [[], []])[1]]
            ticks = [v for w in watched for v in w["latencies"].get(str(minute), [])]
            errors_total += len(errors)
            p99 = percentile([int(v * 1000) for v in latencies], 0.99)
            p99s.append(p99)
            print(f"{minute:>4} {len(latencies):>7} {len(errors):>6} {p99:>12.0f} {len(ticks):>9} "
                  f"{percentile(ticks, 0.99):>11.0f} {percentile([int(v) for v in lags.get(minute, [])], 0.99):>13.0f}")
        if first_refusal:
            print(f"first refusal: {first_refusal}")
        if len(scrapes) > 1 and scrapes[-1]:
            print("\n/metrics, per minute: " + ", ".join(heading for heading, _ in METRICS_COLUMNS))
            for minute in range(1, len(scrapes)):
                print(f"{minute:>4} " + " ".join(f"{figure(scrapes[minute - 1], scrapes[minute]):>11.1f}"
                                                 for _, figure in METRICS_COLUMNS))
        print("\nRSS MB: idle (before the watchers connected), at the start of the load, each minute, at the end")
        print(f"{'process':>8} {'idle':>6} {'start':>6} " + " ".join(f"{m + 1:>5}" for m in range(len(memory_minutes)))
              + f" {'end':>6} {'growth':>7}")
        grew = []
        for name in processes:
            growth = memory_end[name] / memory_start[name] - 1
            grew += [name] if growth > 0.10 else []
            print(f"{name:>8} {memory_idle[name]:>6.0f} {memory_start[name]:>6.0f} "
                  + " ".join(f"{m[name]:>5.0f}" for m in memory_minutes)
                  + f" {memory_end[name]:>6.0f} {growth:>7.1%}")
        trades, still_open, consistent = books(db_url)
        verify = subprocess.run([str(Path(sys.executable).parent / "flask"), "wallet", "verify"], cwd=ROOT, env=env,
                                capture_output=True, text=True)
        print(f"\ntrades: {trades}, still open: {still_open}; balances + stakes - payouts = starting balances: "
              f"{consistent}; flask wallet verify: {'clean' if verify.returncode == 0 else 'FAILED'}")
        if verify.returncode:
            print(verify.stdout, verify.stderr)
        creep = bool(p99s) and max(p99s) > 2 * min(p99s) + 20
        clean = errors_total == 0 and not grew and still_open == 0 and consistent and verify.returncode == 0
        print(f"{'CLEAN' if clean else 'NOT CLEAN'}: errors {errors_total}, memory growth >10 %: {grew or 'none'}, "
              f"placement p99 per minute {'creeps' if creep else 'flat'} ({min(p99s, default=0):.0f}-{max(p99s, default=0):.0f} ms)")
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
        for process in processes.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        redis.stop()
        pg.stop()


if __name__ == "__main__":
    main()
