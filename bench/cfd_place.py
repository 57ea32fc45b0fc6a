"""Placing CFD market orders with SL/TP over HTTP against the real server (wsgi.py under
eventlet, the embedded feed publishing quotes) on a throwaway PostgreSQL: the terminal's
order ticket (POST /competitions/<slug>/trade/orders, HTMX), which answers with the
refreshed book. Closed loop: CLIENTS keep-alive connections in 2 client processes post the
form as fast as answers come back, for SECONDS after a warm-up; each connection rotates over
USERS_PER_CLIENT signed-in participants of one LIVE competition. Each filled order opens a
position (the accounts keep them open, so the books grow through the run).
Target: >= 500 orders/s sustained with p99 <= 50 ms. BENCH_SHAPE=procfile runs the
Procfile's processes instead of the one embedded web process (binary_place.Platform).

Then, in-process on the same database (no network, no other clients), where one order's
time goes: the mean of the service alone (orders.place_order) and of the whole request
(the view, the book it renders back), and a cProfile of the requests (BENCH_PROFILE=0 skips it).

    .venv/bin/python -m bench.cfd_place [seconds] [clients]
"""

from __future__ import annotations

import os
import re
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

from sqlalchemy import func, insert, select

from bench.binary_place import Platform, Run, closed_loop, sign_in, wait_for_first_placement
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


def prepare(url: str, outbox: str, users: int | None = None) -> None:
    """Markets, users (one argon2 hash with the server's parameters) and a LIVE CFD
    competition they all joined, with capital enough that no order runs out of margin."""
    from edutradex.auth.models import Role
    from edutradex.competitions import lifecycle, service
    from edutradex.market.service import seed_markets
    from edutradex.types import utcnow

    users = users or CLIENTS * USERS_PER_CLIENT
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
             "session_nonce": f"{n:016x}"} for n in range(users)])
        db.session.commit()
        now = utcnow().replace(microsecond=0)
        competition = service.create_competition({
            "name": "Bench CFD Cup", "slug": SLUG, "entry_fee": "0", "starting_capital": "1000000",
            "min_participants": 1, "max_participants": users,
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


def run(pg: PostgresServer, seconds: int, clients: int, database: str = "bench_cfd_place") -> Run:
    """The HTTP bench on `pg`: prepare, start the server, sign in, run, stop the server.
    Leaves the database for profile()."""
    from edutradex.competitions.models import CfdFill, CfdPosition, Participant

    users = clients * USERS_PER_CLIENT
    url = pg.create_database(database)
    prepare(url, str(Path(pg.base) / "outbox"), users)
    os.environ["COMPETITIONS_OPEN"] = "1"  # the server's trader pages (whatever the shell has set)
    port = free_port()
    logdir = Path(pg.base) / database
    logdir.mkdir()
    platform = Platform(url, port, logdir)
    path = f"/competitions/{SLUG}/trade/orders"
    try:
        base = f"http://127.0.0.1:{port}"
        signed_in = [sign_in(base, n, f"/competitions/{SLUG}/trade?symbol={SYMBOL}") for n in range(users)]
        wait_for_first_placement(base, signed_in, path, order_form)
        result = closed_loop(port, [signed_in[i::clients] for i in range(clients)], seconds, path, order_form)
    finally:
        platform.stop()
    app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=url)
    with app.app_context():
        opened = db.session.scalar(select(func.count()).select_from(CfdPosition))
        fills = db.session.scalar(select(func.count()).select_from(CfdFill))
        used = db.session.scalar(select(func.sum(Participant.used_margin)))
        held = db.session.scalar(select(func.sum(CfdPosition.margin)))
        db.engine.dispose()
    result.trades, result.consistent = opened, used == held
    result.fills = fills
    result.url = url
    return result


def main() -> None:
    pg = PostgresServer().start()
    try:
        result = run(pg, SECONDS, CLIENTS)
        print(f"{CLIENTS} clients, {SECONDS}s measured after {WARMUP}s warm-up")
        print(result.line("orders"))
        print(f"positions in the database: {result.trades}, fills {result.fills}; used margin = the positions' "
              f"margin: {result.consistent}")
        verdict = "PASS" if result.rate >= 500 and result.pct(0.99) <= 50 and not result.errors else "SHORT"
        print(f"{verdict}: target >= 500 orders/s with p99 <= 50 ms")
        if PROFILE:
            profile(result.url, str(Path(pg.base) / "outbox"))
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
