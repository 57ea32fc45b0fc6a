"""Placing CFD market orders with SL/TP over HTTP against the real server (wsgi.py under
eventlet, the embedded feed publishing quotes) on a throwaway PostgreSQL: the terminal's
order ticket (POST /competitions/<slug>/trade/orders, HTMX), which answers with the
refreshed book. Closed loop: CLIENTS keep-alive connections in 2 client processes post the
form as fast as answers come back, for SECONDS after a warm-up; each connection rotates over
USERS_PER_CLIENT signed-in participants of one LIVE competition. Each filled order opens a
position (the accounts keep them open, so the books grow through the run).
Target: >= 500 orders/s sustained with p99 <= 50 ms.

Then, in-process on the same database (no network, no other clients), where one order's
time goes: the mean of the service alone (orders.place_order) and of the whole request
(the view, the book it renders back), and a cProfile of the requests (BENCH_PROFILE=0 skips it).

    .venv/bin/python -m bench.cfd_place [seconds] [clients]
"""

from __future__ import annotations

import multiprocessing
import os
import re
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

import requests
from sqlalchemy import func, insert, select

from bench.binary_place import client_process, sign_in, start_server
from config import Config, TestingConfig
from edutradex import create_app
from edutradex.auth.models import User
from edutradex.extensions import db
from tests.support.servers import PostgresServer, free_port

SECONDS, CLIENTS = (int(a) for a in (sys.argv[1:] + ["15", "32"][len(sys.argv[1:]):]))
WARMUP = 3
USERS_PER_CLIENT = 3
PROCESSES = 2
SYMBOL = "OTC_EUR_USD"
SLUG = "bench-cfd-cup"
PROFILE = os.environ.get("BENCH_PROFILE", "1") != "0"
PROFILED = 200
HELD = 10
CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
# far from any price the walk reaches in a run: every order is valid, none is triggered
BUY = {"stop_loss": "0.50000", "take_profit": "2.00000"}
SELL = {"stop_loss": "2.00000", "take_profit": "0.50000"}


def prepare(url: str, outbox: str) -> None:
    """Markets, users (one argon2 hash with the server's parameters) and a LIVE CFD
    competition they all joined, with capital enough that no order runs out of margin."""
    from edutradex.auth.models import Role
    from edutradex.competitions import lifecycle, service
    from edutradex.market.service import seed_markets
    from edutradex.types import utcnow

    app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=url, ARGON2_TIME_COST=Config.ARGON2_TIME_COST,
                     ARGON2_MEMORY_COST=Config.ARGON2_MEMORY_COST, MAIL_OUTBOX_DIR=outbox)
    with app.app_context():
        from edutradex.auth.passwords import hash_password

        db.create_all()
        seed_markets()
        password = hash_password("correct-horse-1")
        db.session.execute(insert(User), [
            {"email": f"bench{n}@example.com", "name": f"Bench {n}", "password_hash": password,
             "role": Role.USER.value, "active": True, "demo_balance": Decimal("10000.00"),
             "session_nonce": f"{n:016x}"} for n in range(CLIENTS * USERS_PER_CLIENT)])
        db.session.commit()
        now = utcnow().replace(microsecond=0)
        competition = service.create_competition({
            "name": "Bench CFD Cup", "slug": SLUG, "entry_fee": "0", "starting_capital": "1000000",
            "min_participants": 1, "max_participants": CLIENTS * USERS_PER_CLIENT,
            "registration_opens_at": now - timedelta(hours=1), "registration_closes_at": now + timedelta(minutes=30),
            "start_at": now + timedelta(hours=1), "end_at": now + timedelta(hours=3), "prize_table": {1: "100"}})
        service.publish_competition(competition.id)
        for user_id in db.session.scalars(select(User.id).order_by(User.id)).all():
            service.join_competition(competition.id, user_id)
        assert lifecycle.start_competition(competition.id, competition.start_at) == "LIVE"
        db.session.remove()
        db.engine.dispose()


def order_form(key: str, n: int) -> str:
    side = "BUY" if n % 2 else "SELL"
    return urlencode({"client_key": key, "symbol": SYMBOL, "side": side, "order_type": "MARKET", "lots": "0.01",
                      **(BUY if side == "BUY" else SELL)})


def profile(url: str, outbox: str) -> None:
    """Where one order's time goes, measured in-process on a participant with no positions."""
    import cProfile
    import pstats

    from edutradex.competitions import orders
    from edutradex.market import quotes
    from tests.support.web import AuthActions, csrf_token

    app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=url, MAIL_OUTBOX_DIR=outbox)
    n = CLIENTS * USERS_PER_CLIENT - 1  # the last user: the fewest positions after the run
    with app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.email == f"bench{n}@example.com"))

    def flatten() -> None:
        """Keep the account at a trader's size (up to HELD open positions): marked closed."""
        with app.app_context():
            db.session.execute(db.text("UPDATE cfd_positions SET status = 'CLOSED' WHERE user_id = :u"),
                               {"u": user_id})
            db.session.commit()

    def fresh() -> None:
        mid = Decimal("1.08500")
        quotes.publish_quote(quotes.Quote(SYMBOL, mid, mid + Decimal("0.0001"), mid, 1, quotes.now_ms(), "bench"))

    with app.app_context():
        began = time.perf_counter()
        for i in range(PROFILED):
            if i % HELD == 0:
                flatten()
            fresh()
            orders.place_order(SLUG, user_id, dict(
                item.split("=") for item in order_form(f"service-{i:05d}", i).split("&")))
            db.session.remove()
        service_ms = (time.perf_counter() - began) / PROFILED * 1000
    client = app.test_client()
    AuthActions(client).login(f"bench{n}@example.com")
    headers = {"HX-Request": "true", "X-CSRFToken": csrf_token(client, f"/competitions/{SLUG}/trade"),
               "Content-Type": "application/x-www-form-urlencoded"}
    profiler = cProfile.Profile()

    def post(i: int, call) -> None:
        if i % HELD == 0:
            flatten()
        with app.app_context():
            fresh()
        response = call(client.post, f"/competitions/{SLUG}/trade/orders", data=order_form(f"request-{i:05d}", i),
                        headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)[:300]

    began = time.perf_counter()
    for i in range(PROFILED):
        post(i, lambda f, *a, **k: f(*a, **k))
    request_ms = (time.perf_counter() - began) / PROFILED * 1000
    for i in range(PROFILED, PROFILED + PROFILED // 2):
        post(i, profiler.runcall)
    print(f"in-process, {PROFILED} orders each (the account holding 0 to {HELD - 1} open positions): "
          f"orders.place_order {service_ms:.1f} ms/order; the whole request {request_ms:.1f} ms/order "
          f"(without the profiler)")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)


def main() -> None:
    from edutradex.competitions.models import CfdFill, CfdPosition, Participant

    pg = PostgresServer().start()
    server = None
    try:
        url = pg.create_database("bench_cfd_place")
        prepare(url, str(Path(pg.base) / "outbox"))
        os.environ["COMPETITIONS_OPEN"] = "1"  # the server's trader pages (whatever the shell has set)
        port = free_port()
        log = Path(pg.base) / "server.log"
        server = start_server(url, port, log)
        base = f"http://127.0.0.1:{port}"
        signed_in = [sign_in(base, n, f"/competitions/{SLUG}/trade?symbol={SYMBOL}")
                     for n in range(CLIENTS * USERS_PER_CLIENT)]
        sessions = [signed_in[i::CLIENTS] for i in range(CLIENTS)]
        deadline = time.monotonic() + 15  # the embedded feed publishes the first quote
        while time.monotonic() < deadline:
            cookie, token = signed_in[0]
            r = requests.post(f"{base}/competitions/{SLUG}/trade/orders", data=order_form("bench-first-quote", 1),
                              headers={"Cookie": cookie, "X-CSRFToken": token, "HX-Request": "true",
                                       "Content-Type": "application/x-www-form-urlencoded"}, timeout=10)
            if r.status_code == 200:
                break
            time.sleep(0.3)
        else:
            raise RuntimeError(f"no order placed before the run: {r.status_code} {r.text[:300]}")

        start_at = time.time() + 1
        warm_until = start_at + WARMUP
        stop_at = warm_until + SECONDS
        queue = multiprocessing.Queue()
        per = [sessions[i::PROCESSES] for i in range(PROCESSES)]
        procs = [multiprocessing.Process(target=client_process, args=(port, chunk, start_at, stop_at, warm_until, queue,
                                                                            f"/competitions/{SLUG}/trade/orders", order_form))
                 for chunk in per]
        for proc in procs:
            proc.start()
        latencies, errors, said = [], [], set()
        for _ in procs:
            lat, err, text = queue.get(timeout=SECONDS + WARMUP + 60)
            latencies += lat
            errors += err
            said.add(text)
        for proc in procs:
            proc.join()

        latencies.sort()
        count = len(latencies)
        if not count:
            raise RuntimeError(f"no order answered 200 in the run: errors {len(errors)} {sorted(set(errors))} "
                               f"{' | '.join(t for t in said if t)[:500]}")
        rate = count / SECONDS

        def pct(p: float) -> float:
            return latencies[min(count - 1, int(count * p))] * 1000

        print(f"{CLIENTS} clients, {SECONDS}s measured after {WARMUP}s warm-up")
        print(f"placed {count} orders: {rate:.0f} orders/s; latency ms p50 {pct(0.5):.1f} p95 {pct(0.95):.1f} "
              f"p99 {pct(0.99):.1f} max {latencies[-1] * 1000:.1f}; errors {len(errors)} {sorted(set(errors))} "
              f"{sorted(said - {''})[:2]}")
        app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=url)
        with app.app_context():
            opened = db.session.scalar(select(func.count()).select_from(CfdPosition))
            fills = db.session.scalar(select(func.count()).select_from(CfdFill))
            used = db.session.scalar(select(func.sum(Participant.used_margin)))
            held = db.session.scalar(select(func.sum(CfdPosition.margin)))
            db.engine.dispose()
        print(f"positions in the database: {opened}, fills {fills}; used margin = the positions' margin: {used == held}")
        verdict = "PASS" if rate >= 500 and pct(0.99) <= 50 and not errors else "SHORT"
        print(f"{verdict}: target >= 500 orders/s with p99 <= 50 ms")
        if PROFILE:
            server.terminate()
            server.wait(10)
            server = None
            profile(url, str(Path(pg.base) / "outbox"))
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        pg.stop()


if __name__ == "__main__":
    main()
