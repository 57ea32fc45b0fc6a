"""The CFD engine's own cost (issue #12), on a throwaway SQLite database: ACCOUNTS (default
10,000) accounts of one LIVE competition, each holding 1-3 EUR/USD positions with an SL and a
TP far from the price (so a tick fires nothing and no account is near stop-out), plus PENDING
(default 20,000) resting limit orders.

1. start: rebuild the books from the database (trigger book + risk book);
2. tick:  per-tick cost of CfdEngine.process (trigger-book pop + the risk pass over every
   account holding the symbol, as wired in the engine), p50 / p99, target p99 <= 10 ms
   (bench.cfd_risk's target for the RiskBook alone);
3. reconcile: the periodic re-read of every pending order and open position when nothing
   changed (runs in the feed loop every CFD_RECONCILE_SECONDS).

    .venv/bin/python -m bench.cfd_engine [accounts] [ticks] [pending]
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from decimal import Decimal

from sqlalchemy import insert, select

from edutradex.competitions import service
from edutradex.competitions.engine import CfdEngine
from edutradex.competitions.models import CfdOrder, CfdPosition, Competition, Participant
from edutradex.extensions import db
from edutradex.market.service import seed_markets
from edutradex.market.store import TickRow
from edutradex.types import utcnow

from .competitions import scratch_app, terms, users

ACCOUNTS, TICKS, PENDING = (int(a) for a in (sys.argv[1:] + ["10000", "2000", "20000"][len(sys.argv[1:]):]))
SYMBOL = "OTC_EUR_USD"
TARGET_P99_MS = 10.0
D = Decimal


def populate(rng: random.Random) -> None:
    seed_markets()
    competition = service.create_competition(terms("Engine bench", ACCOUNTS))
    service.publish_competition(competition.id)
    ids = users(ACCOUNTS, "engine")
    now = utcnow()
    db.session.execute(insert(Participant), [
        {"competition_id": competition.id, "user_id": user_id, "status": "ACTIVE", "entry_number": 1,
         "joined_at": now, "fees_paid": D("0.00"), "cash": D("10000.00"), "equity": D("10000.00"),
         "used_margin": D("0.00"), "trades_count": 0, "rebuys": 0, "disqualified": False}
        for user_id in ids])
    db.session.execute(Competition.__table__.update().where(Competition.id == competition.id)
                       .values(status="LIVE", seats_taken=ACCOUNTS, has_had_entrants=True))
    db.session.commit()
    accounts = db.session.execute(select(Participant.id, Participant.user_id)
                                  .where(Participant.competition_id == competition.id)).all()
    positions, used = [], {}
    for participant_id, user_id in accounts:
        for _ in range(rng.randint(1, 3)):
            side = rng.choice(["BUY", "SELL"])
            lots = D(rng.randint(1, 50)) / 100
            price = D("1.08500") + D(rng.randint(-200, 200)) / 100_000
            margin = (lots * 100_000 * price / 30).quantize(D("0.01"))
            used[participant_id] = used.get(participant_id, D(0)) + margin
            far = D("0.05")
            positions.append({
                "competition_id": competition.id, "participant_id": participant_id, "user_id": user_id,
                "symbol": SYMBOL, "side": side, "lots": lots, "opened_lots": lots, "contract_size": D(100_000),
                "quote_currency": "USD", "leverage": 30, "margin": margin, "open_price": price, "open_tick_id": 0,
                "stop_loss": price - far if side == "BUY" else price + far,
                "take_profit": price + far if side == "BUY" else price - far, "status": "OPEN", "opened_at": now,
                "realized_pnl": D(0), "version": 0})
    db.session.execute(insert(CfdPosition), positions)
    for participant_id, margin in used.items():
        db.session.execute(Participant.__table__.update().where(Participant.id == participant_id)
                           .values(used_margin=margin))
    db.session.execute(insert(CfdOrder), [
        {"competition_id": competition.id, "participant_id": accounts[n % len(accounts)][0],
         "user_id": accounts[n % len(accounts)][1], "client_key": f"bench-{n}", "symbol": SYMBOL,
         "side": side, "order_type": "LIMIT", "lots": D("0.10"), "leverage": 30, "status": "PENDING",
         "price": D("1.08500") + (-1 if side == "BUY" else 1) * D(rng.randint(1000, 3000)) / 100_000,
         "created_at": now, "updated_at": now}
        for n in range(PENDING) for side in [rng.choice(["BUY", "SELL"])]])
    db.session.commit()
    print(f"populated: {ACCOUNTS} accounts, {len(positions)} positions with SL and TP, {PENDING} pending orders")


def main() -> None:
    rng = random.Random(5)
    with scratch_app(populate, rng) as app:
        engine = CfdEngine(app)
        t0 = time.perf_counter()
        engine.start()
        t1 = time.perf_counter()
        print(f"start: books rebuilt in {(t1 - t0) * 1000:.0f} ms: {len(engine.triggers)} triggers, "
              f"{len(engine.risk)} accounts in the risk book")
        mid = 1.08500
        base_id = 10_000_000
        costs = []
        for n in range(TICKS):
            mid += rng.uniform(-0.00005, 0.00005)
            bid = D(f"{mid - 0.00005:.5f}")
            row = TickRow(base_id + n, SYMBOL, 1_900_000_000_000 + n, bid, bid + D("0.00010"),
                          bid + D("0.00005"), "BENCH")
            t = time.perf_counter()
            engine.process(row)
            costs.append((time.perf_counter() - t) * 1000)
        costs.sort()
        p50, p99 = statistics.median(costs), costs[int(len(costs) * 0.99) - 1]
        print(f"tick: {TICKS} ticks, CfdEngine.process p50 {p50:.2f} ms, p99 {p99:.2f} ms "
              f"(target p99 <= {TARGET_P99_MS} ms): {'OK' if p99 <= TARGET_P99_MS else 'OVER'}; "
              f"fills {engine.fills}")
        t = time.perf_counter()
        engine.reconcile()
        print(f"reconcile (nothing changed): {(time.perf_counter() - t) * 1000:.0f} ms")
        engine.active = False


if __name__ == "__main__":
    main()
