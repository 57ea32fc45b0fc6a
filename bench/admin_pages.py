"""Admin pages on a platform with history: response times of the statistics page, the
volume JSON, user search and the audit log (filtered, deep pages), on SQLite.

    .venv/bin/python -m bench.admin_pages [users] [trades] [audit_entries]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import insert

from config import TestingConfig
from edutradex import create_app
from edutradex.admin.models import AdminAuditEntry
from edutradex.auth.models import User
from edutradex.auth.passwords import hash_password
from edutradex.binary.models import Trade
from edutradex.extensions import db
from edutradex.types import utcnow
from tests.support.web import AuthActions

USERS, TRADES, ENTRIES = (int(a) for a in (sys.argv[1:] + ["5000", "100000", "50000"][len(sys.argv[1:]):]))
RUNS = 15


def populate(app) -> None:
    now = utcnow()
    with app.app_context():
        password = hash_password("correct-horse-1")
        users = [{"email": f"user{n}@example.com", "name": f"Trader {n}", "password_hash": password, "role": "USER",
                  "active": True, "demo_balance": Decimal("10000.00"), "session_nonce": f"{n:016x}",
                  "created_at": now, "last_login_at": now - timedelta(hours=n % 72)} for n in range(USERS)]
        users[0].update(email="boss@example.com", role="ADMIN")
        db.session.execute(insert(User), users)
        trades = []
        for n in range(TRADES):
            opened = now - timedelta(seconds=n * 30)
            ms = int(opened.timestamp() * 1000)
            settled = n % 50 != 0
            trades.append({
                "user_id": 1 + n % USERS, "symbol": "OTC_EUR_USD", "direction": "UP", "stake": Decimal("10.00"),
                "payout_percent": Decimal("80.00"), "potential_payout": Decimal("18.00"),
                "entry_price": Decimal("1.085"), "entry_bid": Decimal("1.0849"), "entry_ask": Decimal("1.0851"),
                "entry_ts_ms": ms, "duration_seconds": 60, "opened_at": opened,
                "expires_at": opened + timedelta(seconds=60), "expires_ms": ms + 60000,
                "status": "SETTLED" if settled else "OPEN", "result": ("WIN" if n % 2 else "LOSS") if settled else None,
                "payout": (Decimal("18.00") if n % 2 else Decimal("0.00")) if settled else None,
                "idempotency_key": f"bench-{n:08d}"})
        db.session.execute(insert(Trade), trades)
        actions = ("user.deactivate", "user.activate", "market.update", "setting.change", "user.adjust_credits")
        db.session.execute(insert(AdminAuditEntry), [
            {"actor_id": 1, "action": actions[n % 5], "target_type": "user", "target_id": str(1 + n % USERS),
             "before": {"active": True}, "after": {"active": False}, "ip": "127.0.0.1",
             "created_at": now - timedelta(minutes=n)} for n in range(ENTRIES)])
        db.session.commit()


def timed(client, path: str) -> tuple[float, float]:
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=f"sqlite:///{Path(folder) / 'bench.db'}")
        with app.app_context():
            db.create_all()
        started = time.perf_counter()
        populate(app)
        print(f"{USERS} users, {TRADES} trades, {ENTRIES} audit entries written in {time.perf_counter() - started:.1f}s")
        client = app.test_client()
        AuthActions(client).login(email="boss@example.com")
        deep = ENTRIES // 25
        for path in ("/admin/", "/admin/stats/volume.json", "/admin/users", "/admin/users?q=user4711",
                     "/admin/users?q=Trader 12", "/admin/users/2", "/admin/audit", "/admin/audit?action=market.update",
                     "/admin/audit?target_type=user&target_id=42", "/admin/audit?actor=boss@",
                     f"/admin/audit?page={deep}"):
            median, p95 = timed(client, path)
            print(f"GET {path:<45} median {median:7.1f} ms   p95 {p95:7.1f} ms")
        with app.app_context():
            db.engine.dispose()


if __name__ == "__main__":
    main()
