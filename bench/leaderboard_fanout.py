"""Leaderboard fan-out: CLIENTS (default 2,000) Socket.IO clients watching one live
competition's board, with bench.market_fanout's method (one web process, wsgi.py under
eventlet, the feed and its CFD engine embedded; lean clients in 4 processes on loopback).

PARTICIPANTS (default 2,000) accounts each hold a position on OTC_EUR_USD, which ticks 10
times a second, so the engine re-ranks a board that moves every second. Every client joins
room ``competition:<id>`` (``competition_watch``) and counts the ``leaderboard`` frames it
gets in MEASURE_SECONDS, with the latency from the re-rank (the frame's ``at_ms``) to its
arrival; a frame counts when its ``at_ms`` is in the window, whenever it arrives (5 s of
grace). Frames sent: the distinct ``at_ms`` any client saw; every frame delivered when
frames received = clients x frames sent. Target (issue #13): every frame delivered, p99 <=
250 ms.

    .venv/bin/python -m bench.leaderboard_fanout [clients] [participants]
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

from bench import market_fanout

ROOT = Path(__file__).resolve().parents[1]
SYMBOL = "OTC_EUR_USD"
D = Decimal


def populate(participants: int) -> int:
    """A live competition whose PARTICIPANTS hold one position each; prints its id."""
    from datetime import timedelta

    from sqlalchemy import insert, select

    from bench.competitions import terms, users
    from edutradex import create_app
    from edutradex.competitions import service
    from edutradex.competitions.models import CfdPosition, Competition, Participant
    from edutradex.extensions import db
    from edutradex.market.service import seed_markets
    from edutradex.types import utcnow

    app = create_app()
    app.app_context().push()
    db.create_all()
    seed_markets()
    competition = service.create_competition(terms("Board fan-out bench", participants))
    service.publish_competition(competition.id)
    now = utcnow().replace(microsecond=0)
    ids = users(participants, "board")
    db.session.execute(insert(Participant), [
        {"competition_id": competition.id, "user_id": user_id, "status": "ACTIVE", "entry_number": 1,
         "joined_at": now, "fees_paid": D("0.00"), "cash": D("10000.00"), "equity": D("10000.00"),
         "used_margin": D("0.00"), "trades_count": 1, "rebuys": 0, "disqualified": False} for user_id in ids])
    db.session.execute(Competition.__table__.update().where(Competition.id == competition.id).values(
        status="LIVE", seats_taken=participants, has_had_entrants=True, start_at=now - timedelta(minutes=1),
        started_at=now - timedelta(minutes=1), end_at=now + timedelta(hours=1)))
    accounts = db.session.execute(select(Participant.id, Participant.user_id)
                                  .where(Participant.competition_id == competition.id)).all()
    db.session.execute(insert(CfdPosition), [
        {"competition_id": competition.id, "participant_id": pid, "user_id": uid, "symbol": SYMBOL,
         "side": "BUY" if n % 2 else "SELL", "lots": D(n % 50 + 1) / 100, "opened_lots": D(n % 50 + 1) / 100,
         "contract_size": D(100_000), "quote_currency": "USD", "leverage": 30, "margin": D("100.00"),
         "open_price": D("1.08500"), "open_tick_id": 0, "status": "OPEN", "opened_at": now, "realized_pnl": D(0),
         "version": 0} for n, (pid, uid) in enumerate(accounts)])
    db.session.execute(Participant.__table__.update().where(Participant.competition_id == competition.id)
                       .values(used_margin=D("100.00")))
    db.session.commit()
    print(competition.id)
    return competition.id


def main(clients: int, participants: int) -> None:
    from tests.support.live import LiveServer

    with tempfile.TemporaryDirectory(prefix="bench-board-fanout-") as tmp:
        server = LiveServer(Path(tmp), FEED_TICK_INTERVAL_MS="100", FEED_EMIT_INTERVAL_MS="100",
                            EMBEDDED_SERVICES="1", TICK_FLUSH_INTERVAL_MS="250")
        made = subprocess.run([sys.executable, "-c", f"from bench.leaderboard_fanout import populate; "
                               f"populate({participants})"], cwd=ROOT, env=server.env, check=True,
                              capture_output=True, text=True)
        competition_id = int(made.stdout.strip().splitlines()[-1])
        server.start()
        try:
            r = market_fanout.run_level(server.url, clients, module="bench.leaderboard_fanout",
                                        extra=(str(competition_id),), frames_per_client_s=1)
        finally:
            server.stop()
    sent = len(r["stamps"])
    expected = r["connected"] * sent
    print(f"one web process (eventlet, feed and CFD engine embedded), {participants:,} participants with a position "
          f"on {SYMBOL} ticking 10/s, {r['connected']:,}/{clients:,} clients connected in "
          f"{market_fanout.CLIENT_PROCESSES} processes, {market_fanout.MEASURE_SECONDS} s, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("| clients | frames sent | frames received | of clients x sent | clients missing a frame | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|")
    share = r["frames"] / expected if expected else 0
    missing = sum(1 for n in r["per_client"] if n < sent)
    print(f"| {r['connected']:,} | {sent} | {r['frames']:,} | {share:.1%} | {missing:,} | {r['p50_ms']:.0f} | "
          f"{r['p99_ms']:.0f} |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        url, count, start_at, seconds, cid = (sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]),
                                              int(sys.argv[6]))
        print(json.dumps(asyncio.run(market_fanout.lean_client_main(
            url, count, start_at, seconds, subscribe=[f'42["competition_watch",{{"id":{cid}}}]'], ts_key=b"at_ms", by_stamp=5.0))))
    else:
        args = [int(a) for a in sys.argv[1:]]
        main(*(args + [2000, 2000][len(args):]))
