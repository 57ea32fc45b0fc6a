"""Placing rise/fall trades over HTTP against the real server (wsgi.py under eventlet, the
embedded feed publishing quotes, the settlement clock settling) on a throwaway
PostgreSQL. Closed loop: CLIENTS keep-alive connections in 2 client processes post the
HTMX form as fast as answers come back, for SECONDS after a warm-up. Each connection
rotates over USERS_PER_CLIENT signed-in users placing 5-second trades, so every user stays
under the open-trade limit (raised to OPEN_LIMIT for the run) and settlement runs alongside.
Target: >= 500 trades/s sustained with p99 <= 50 ms.

    .venv/bin/python -m bench.binary_place [seconds] [clients]
"""

from __future__ import annotations

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
from urllib.parse import urlencode

import requests
from sqlalchemy import func, insert, select

from config import Config, TestingConfig
from edutradex import create_app
from edutradex.auth.models import User
from edutradex.binary.models import Trade
from edutradex.extensions import db
from tests.support.servers import PostgresServer, free_port

SECONDS, CLIENTS = (int(a) for a in (sys.argv[1:] + ["15", "32"][len(sys.argv[1:]):]))
WARMUP = 3
USERS_PER_CLIENT = 3
OPEN_LIMIT = 60
DURATION = "5"
PROCESSES = 2
SYMBOL = "OTC_EUR_USD"
ROOT = Path(__file__).resolve().parents[1]
CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def prepare(url: str) -> None:
    """Markets, and users whose password hash has the server's own argon2 parameters (one
    hash for all, so signing in does not rehash)."""
    from edutradex.auth.models import Role
    from edutradex.market.service import seed_markets
    from edutradex.settings import set_setting

    app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=url, ARGON2_TIME_COST=Config.ARGON2_TIME_COST,
                     ARGON2_MEMORY_COST=Config.ARGON2_MEMORY_COST)
    with app.app_context():
        from edutradex.auth.passwords import hash_password

        db.create_all()
        seed_markets()
        # 5-second trades at ~5 per second per user: more than the default 20 open at once.
        set_setting("max_open_trades", str(OPEN_LIMIT))
        password = hash_password("correct-horse-1")
        db.session.execute(insert(User), [
            {"email": f"bench{n}@example.com", "name": f"Bench {n}", "password_hash": password,
             "role": Role.USER.value, "active": True, "demo_balance": Decimal("10000.00"),
             "session_nonce": f"{n:016x}"} for n in range(CLIENTS * USERS_PER_CLIENT)])
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


def start_server(url: str, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": url, "PORT": str(port), "HOST": "127.0.0.1", "EMBEDDED_SERVICES": "1",
           "SECRET_KEY": "bench-secret-key-0123456789abcdef", "RATELIMIT_ENABLED": "0", "EDUTRADEX_ENV": "development"}
    env.pop("REDIS_URL", None)
    process = subprocess.Popen([sys.executable, os.environ.get("BENCH_SERVER", "wsgi.py")], cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return process
        except requests.RequestException:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"server did not start:\n{log.read_text()}")


def sign_in(base: str, n: int, page: str = f"/trade/{SYMBOL}") -> tuple[str, str]:
    """(cookie header, CSRF token) of a signed-in session, the token read from `page`."""
    session = requests.Session()
    token = CSRF.search(session.get(base + "/login", timeout=10).text).group(1)
    session.post(base + "/login", data={"csrf_token": token, "email": f"bench{n}@example.com",
                                        "password": "correct-horse-1"}, timeout=10)
    html = session.get(base + page, timeout=10).text
    cookie = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
    return cookie, CSRF.search(html).group(1)


def trade_form(key: str, n: int) -> str:
    return urlencode({"symbol": SYMBOL, "direction": "UP" if n % 2 else "DOWN", "stake": "1.00",
                      "duration": DURATION, "idempotency_key": key})


def client_process(port: int, sessions: list, start_at: float, stop_at: float, warm_until: float, queue,
                   path: str = "/trade/place", form=trade_form) -> None:
    """One client process of the closed loop: a keep-alive connection per thread posts
    `form(key, n)` to `path` (HTMX) as fast as answers come back, rotating over its signed-in
    sessions. Puts (latencies of the 200s, statuses of the rest, the first refusal's text)."""
    latencies: list[float] = []
    errors: list[int] = []
    said: list[str] = []

    def worker(index: int, users: list[tuple[str, str]]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        n = 0
        while time.time() < start_at:
            time.sleep(0.001)
        while time.time() < stop_at:
            n += 1
            cookie, token = users[n % len(users)]
            headers = {"Cookie": cookie, "X-CSRFToken": token, "HX-Request": "true",
                       "Content-Type": "application/x-www-form-urlencoded"}
            began = time.time()
            conn.request("POST", path, body=form(f"b{os.getpid()}-{index}-{n}", n), headers=headers)
            response = conn.getresponse()
            body = response.read()
            ended = time.time()
            if began >= warm_until:
                if response.status == 200:
                    latencies.append(ended - began)
                else:
                    errors.append(response.status)
                    if not said:
                        said.append(" ".join(re.sub(r"<[^>]+>", " ", body.decode(errors="replace")).split()))
        conn.close()

    threads = [threading.Thread(target=worker, args=(i, users)) for i, users in enumerate(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    queue.put((latencies, errors, said[0] if said else ""))


def main() -> None:
    pg = PostgresServer().start()
    server = None
    try:
        url = pg.create_database("bench_binary_place")
        prepare(url)
        port = free_port()
        log = Path(pg.base) / "server.log"
        server = start_server(url, port, log)
        base = f"http://127.0.0.1:{port}"
        signed_in = [sign_in(base, n) for n in range(CLIENTS * USERS_PER_CLIENT)]
        sessions = [signed_in[i::CLIENTS] for i in range(CLIENTS)]
        deadline = time.monotonic() + 15  # the embedded feed publishes the first quote
        while time.monotonic() < deadline:
            cookie, token = signed_in[0]
            r = requests.post(base + "/trade/place", headers={"Cookie": cookie, "X-CSRFToken": token, "HX-Request": "true"},
                              data={"symbol": SYMBOL, "direction": "UP", "stake": "1.00", "duration": DURATION,
                                    "idempotency_key": "bench-first-quote"}, timeout=10)
            if r.status_code == 200:
                break
            time.sleep(0.3)

        start_at = time.time() + 1
        warm_until = start_at + WARMUP
        stop_at = warm_until + SECONDS
        queue = multiprocessing.Queue()
        per = [sessions[i::PROCESSES] for i in range(PROCESSES)]
        procs = [multiprocessing.Process(target=client_process, args=(port, chunk, start_at, stop_at, warm_until, queue))
                 for chunk in per]
        for proc in procs:
            proc.start()
        latencies, errors = [], []
        for _ in procs:
            lat, err, _ = queue.get(timeout=SECONDS + WARMUP + 60)
            latencies += lat
            errors += err
        for proc in procs:
            proc.join()

        latencies.sort()
        count = len(latencies)
        rate = count / SECONDS

        def pct(p: float) -> float:
            return latencies[min(count - 1, int(count * p))] * 1000

        print(f"{CLIENTS} clients, {SECONDS}s measured after {WARMUP}s warm-up")
        print(f"placed {count} trades: {rate:.0f} trades/s; latency ms p50 {pct(0.5):.1f} p95 {pct(0.95):.1f} "
              f"p99 {pct(0.99):.1f} max {latencies[-1] * 1000:.1f}; errors {len(errors)} {sorted(set(errors))}")
        app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=url)
        with app.app_context():
            # open trades hold their stake; settled ones returned their payout. One statement,
            # so one snapshot: the server is still settling, and three queries could each see
            # a different moment (the check then failed about one run in two).
            trades, staked, paid, balances = db.session.execute(select(
                select(func.count()).select_from(Trade).scalar_subquery(),
                select(func.sum(Trade.stake)).scalar_subquery(),
                select(func.coalesce(func.sum(Trade.payout), 0)).scalar_subquery(),
                select(func.sum(User.demo_balance)).scalar_subquery())).one()
            db.engine.dispose()
        consistent = balances + staked - paid == Decimal("10000.00") * CLIENTS * USERS_PER_CLIENT
        print(f"trades in the database: {trades}; balances + stakes - payouts = starting balances: {consistent}")
        verdict = "PASS" if rate >= 500 and pct(0.99) <= 50 and not errors else "SHORT"
        print(f"{verdict}: target >= 500 trades/s with p99 <= 50 ms")
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        pg.stop()


if __name__ == "__main__":
    main()
