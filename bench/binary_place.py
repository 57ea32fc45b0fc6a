"""Placing rise/fall trades over HTTP against the real server (wsgi.py under eventlet, the
embedded feed publishing quotes, the settlement clock settling) on a throwaway
PostgreSQL. Closed loop: CLIENTS keep-alive connections in 2 client processes post the
HTMX form as fast as answers come back, for SECONDS after a warm-up. Each connection
rotates over USERS_PER_CLIENT signed-in users placing 5-second trades, so every user stays
under the open-trade limit (raised to OPEN_LIMIT for the run) and settlement runs alongside.
Target: >= 500 trades/s sustained with p99 <= 50 ms. BENCH_SHAPE=procfile runs the
Procfile's processes instead of the one embedded web process (see Platform).

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


def prepare(url: str, users: int | None = None) -> None:
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
             "session_nonce": f"{n:016x}"} for n in range(users or CLIENTS * USERS_PER_CLIENT)])
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


def start_server(url: str, port: int, log: Path) -> subprocess.Popen:
    """The embedded shape: one `python wsgi.py` running the feed and the settlement clock
    itself, no Redis (BENCH_SHAPE=procfile runs the Procfile's processes instead: Platform)."""
    env = {**os.environ, "DATABASE_URL": url, "PORT": str(port), "HOST": "127.0.0.1", "EMBEDDED_SERVICES": "1",
           "SECRET_KEY": "bench-secret-key-0123456789abcdef", "RATELIMIT_ENABLED": "0", "EDUTRADEX_ENV": "development"}
    env.pop("REDIS_URL", None)
    process = subprocess.Popen([sys.executable, os.environ.get("BENCH_SERVER", "wsgi.py")], cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    wait_for_health(port, process, log)
    return process


def wait_for_health(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return
        except requests.RequestException:
            if process.poll() is not None:
                break
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"server did not start:\n{log.read_text()}")


class Platform:
    """The server a bench places against, in one of two shapes (BENCH_SHAPE):

    - "embedded": start_server, one web process that is the whole platform;
    - "procfile": the Procfile's processes, started as it says, with a Redis: one `feed`
      (`flask feed run`: the price authority, the CFD engine, the settlement clock), one
      `worker` (`flask worker`) and `web` (`python wsgi.py`, BENCH_WEB processes sharing the
      port when more than one), with the production environment of tests/support/deploy.py
      (EDUTRADEX_ENV=production). sign_in sends the Secure cookies back over plain HTTP."""

    def __init__(self, url: str, port: int, logdir: Path, shape: str | None = None):
        self.shape = shape or os.environ.get("BENCH_SHAPE", "embedded")
        self.processes: list[subprocess.Popen] = []
        self.redis = None
        if self.shape == "embedded":
            self.processes.append(start_server(url, port, logdir / "web.log"))
            return
        if self.shape != "procfile":
            raise SystemExit(f"BENCH_SHAPE={self.shape!r}: use embedded or procfile")
        from tests.support.deploy import procfile, production_env
        from tests.support.servers import RedisServer

        self.redis = RedisServer().start()
        commands = procfile()
        env = {**os.environ, **production_env(url, REDIS_URL=self.redis.url, PORT=str(port), HOST="127.0.0.1",
                                               RATELIMIT_ENABLED="0")}
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", os.defpath)])
        try:
            self._start("feed", commands["feed"], env, logdir)
            self._wait_for_authority()
            self._start("worker", commands["worker"], env, logdir)
            webs = int(os.environ.get("BENCH_WEB", "1"))
            web_env = {**env, "WEB_REUSE_PORT": "1"} if webs > 1 else env
            for n in range(webs):
                web = self._start(f"web{n}", commands["web"], web_env, logdir)
                wait_for_health(port, web, logdir / f"web{n}.log")
        except BaseException:
            self.stop()
            raise

    def _start(self, name: str, command: str, env: dict, logdir: Path) -> subprocess.Popen:
        process = subprocess.Popen(["sh", "-c", f"exec {command}"], cwd=ROOT, env=env,
                                   stdout=(logdir / f"{name}.log").open("wb"), stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def _wait_for_authority(self) -> None:
        from redis import Redis

        from edutradex.market.feed import LOCK_KEY

        redis = Redis.from_url(self.redis.url)
        deadline = time.monotonic() + 30
        while not redis.exists(LOCK_KEY):
            if time.monotonic() > deadline:
                raise RuntimeError("the feed process did not take the price authority")
            time.sleep(0.2)

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        if self.redis is not None:
            self.redis.stop()


def sign_in(base: str, n: int, page: str = f"/trade/{SYMBOL}") -> tuple[str, str]:
    """(cookie header, CSRF token) of a signed-in session, the token read from `page`. The
    cookies are kept by hand: a production server marks them Secure, and a cookie jar
    would not send those back over the bench's plain HTTP."""
    jar: dict[str, str] = {}

    def call(method: str, path: str, **kwargs) -> requests.Response:
        cookie = "; ".join(f"{name}={value}" for name, value in jar.items())
        response = requests.request(method, base + path, headers={"Cookie": cookie}, timeout=10,
                                    allow_redirects=False, **kwargs)
        jar.update({c.name: c.value for c in response.cookies})
        return response

    token = CSRF.search(call("GET", "/login").text).group(1)
    call("POST", "/login", data={"csrf_token": token, "email": f"bench{n}@example.com", "password": "correct-horse-1"})
    html = call("GET", page).text
    return "; ".join(f"{name}={value}" for name, value in jar.items()), CSRF.search(html).group(1)


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


class Run:
    """What a closed-loop run measured: the latencies of the 200s, the other statuses."""

    def __init__(self, seconds: float, latencies: list[float], errors: list[int], said: set[str]):
        self.seconds = seconds
        self.latencies = sorted(latencies)
        self.errors = errors
        self.said = sorted(said - {""})
        self.trades: int | None = None  # what the database holds after the run (run() fills them in)
        self.consistent: bool | None = None

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    def pct(self, p: float) -> float:
        """The p-quantile of the latencies, in ms (inf when nothing succeeded)."""
        if not self.latencies:
            return float("inf")
        return self.latencies[min(self.count - 1, int(self.count * p))] * 1000

    def line(self, what: str) -> str:
        top = self.latencies[-1] * 1000 if self.latencies else float("inf")
        return (f"placed {self.count} {what}: {self.rate:.0f}/s; latency ms p50 {self.pct(0.5):.1f} "
                f"p95 {self.pct(0.95):.1f} p99 {self.pct(0.99):.1f} max {top:.1f}; "
                f"errors {len(self.errors)} {sorted(set(self.errors))} {self.said[:2]}")


def closed_loop(port: int, sessions: list, seconds: int, path: str = "/trade/place", form=trade_form) -> Run:
    """PROCESSES client processes, each a keep-alive connection per session list, posting
    `form` to `path` for WARMUP + `seconds`; the warm-up is not counted."""
    start_at = time.time() + 1
    warm_until = start_at + WARMUP
    stop_at = warm_until + seconds
    queue = multiprocessing.Queue()
    per = [sessions[i::PROCESSES] for i in range(PROCESSES)]
    procs = [multiprocessing.Process(target=client_process,
                                     args=(port, chunk, start_at, stop_at, warm_until, queue, path, form))
             for chunk in per]
    for proc in procs:
        proc.start()
    latencies, errors, said = [], [], set()
    for _ in procs:
        lat, err, text = queue.get(timeout=seconds + WARMUP + 60)
        latencies += lat
        errors += err
        said.add(text)
    for proc in procs:
        proc.join()
    return Run(seconds, latencies, errors, said)


def wait_for_first_placement(base: str, signed_in: list, path: str = "/trade/place", form=trade_form) -> None:
    """The embedded feed publishes the first quote a few seconds after the start."""
    deadline = time.monotonic() + 15
    while True:
        cookie, token = signed_in[0]
        r = requests.post(base + path, data=form("bench-first-quote", 1), timeout=10,
                          headers={"Cookie": cookie, "X-CSRFToken": token, "HX-Request": "true",
                                   "Content-Type": "application/x-www-form-urlencoded"})
        if r.status_code == 200:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing placed before the run: {r.status_code} {r.text[:300]}")
        time.sleep(0.3)


def money_check(url: str, users: int) -> tuple[int, bool]:
    """(trades, whether balances + stakes - payouts = the starting balances)."""
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
    return trades, balances + staked - paid == Decimal("10000.00") * users


def run(pg: PostgresServer, seconds: int, clients: int, database: str = "bench_binary_place") -> Run:
    """The whole bench on `pg`: prepare, start the server, sign in, run, stop the server."""
    users = clients * USERS_PER_CLIENT
    url = pg.create_database(database)
    prepare(url, users)
    port = free_port()
    logdir = Path(pg.base) / database
    logdir.mkdir()
    platform = Platform(url, port, logdir)
    try:
        base = f"http://127.0.0.1:{port}"
        signed_in = [sign_in(base, n) for n in range(users)]
        wait_for_first_placement(base, signed_in)
        result = closed_loop(port, [signed_in[i::clients] for i in range(clients)], seconds)
    finally:
        platform.stop()
    result.trades, result.consistent = money_check(url, users)
    return result


def main() -> None:
    pg = PostgresServer().start()
    try:
        result = run(pg, SECONDS, CLIENTS)
        print(f"{CLIENTS} clients, {SECONDS}s measured after {WARMUP}s warm-up")
        print(result.line("trades"))
        print(f"trades in the database: {result.trades}; balances + stakes - payouts = starting balances: "
              f"{result.consistent}")
        verdict = "PASS" if result.rate >= 500 and result.pct(0.99) <= 50 and not result.errors else "SHORT"
        print(f"{verdict}: target >= 500 trades/s with p99 <= 50 ms")
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
