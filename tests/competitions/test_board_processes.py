"""Two web processes (wsgi.py, the Procfile's `web`, twice) on one PostgreSQL and one Redis
serve the same leaderboard. The first stands in for the `feed` process (it holds the price
authority: the CFD engine re-ranks there); the second only reads the shared board. Traders
place their orders through the second, the engine in the first values their positions, and
both pages, both counts and the Socket.IO room of the second show the same ranking; when the
first stops, the second takes the authority over and the same board goes on."""

from __future__ import annotations

import re
import threading
import time

import pytest
import requests
from redis import Redis

from edutradex.auth.models import User
from edutradex.competitions.models import Competition
from edutradex.extensions import db
from edutradex.market.authority import LOCK_KEY
from tests.competitions.board_helpers import live_competition
from tests.conftest import build_app
from tests.factories import PASSWORD
from tests.support.deploy import production_env, run_release
from tests.support.live import LiveServer
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
CLIENT_KEY = re.compile(r'name="client_key" value="([^"]+)"')
ROW = re.compile(r'<tr data-testid="board-row" data-participant="(\d+)".*?<td data-label="Rank" class="mono">(\d+)'
                 r'.*?data-label="Equity" class="num mono">([^<]+)</td>.*?data-label="Trades" class="num mono">(\d+)<',
                 re.S)
SYMBOL = "OTC_EUR_USD"


def log_in(base: str, email: str) -> requests.Session:
    session = requests.Session()
    token = CSRF.search(session.get(base + "/login", timeout=10).text).group(1)
    response = session.post(base + "/login", timeout=10,
                            data={"csrf_token": token, "email": email, "password": PASSWORD})
    assert response.status_code == 200 and "Log out" in response.text, response.text[:500]
    return session


def place_market_order(session: requests.Session, base: str, slug: str, side: str, lots: str) -> None:
    """Through the trading page, as the terminal's ticket sends it (retried while the
    authority's first quote is not there yet)."""
    def placed():
        html = session.get(f"{base}/competitions/{slug}/trade?symbol={SYMBOL}", timeout=10).text
        response = session.post(f"{base}/competitions/{slug}/trade/orders", timeout=10, headers={
            "HX-Request": "true", "X-CSRFToken": CSRF.search(html).group(1)}, data={
            "client_key": CLIENT_KEY.search(html).group(1), "symbol": SYMBOL, "side": side,
            "order_type": "MARKET", "lots": lots})
        if response.status_code != 200:  # shown if the order never goes through
            print("order refused:", response.status_code, response.text[:300])
        return response.status_code == 200

    wait_for(placed, timeout=30, interval=0.5, message=f"the {side} order placed")


def board(session: requests.Session, base: str, cid: int) -> tuple[str, list[tuple[int, int, str, int]], dict]:
    """The board fragment (as HTMX refreshes it), its rows (participant, rank, equity, trades)
    and the counts, as this process serves them."""
    response = session.get(f"{base}/competitions/{cid}/leaderboard", headers={"HX-Request": "true"}, timeout=10)
    assert response.status_code == 200, response.text[:500]
    fragment = response.text
    rows = [(int(pid), int(rank), equity.replace(",", ""), int(trades))
            for pid, rank, equity, trades in ROW.findall(fragment)]
    counts = session.get(f"{base}/competitions/{cid}/leaderboard/counts", timeout=10)
    assert counts.status_code == 200, counts.text[:500]
    return fragment, rows, counts.json()


def test_two_web_processes_on_one_redis_serve_the_same_board(tmp_path, postgres_url, redis_url):
    import socketio as socketio_client

    # Development settings on purpose: the test talks plain HTTP, and production's Secure
    # cookies would not come back over it. Services and processes are the deploy's.
    deploy = {**production_env(postgres_url), "EDUTRADEX_ENV": "development", "REDIS_URL": redis_url,
              "FEED_TICK_INTERVAL_MS": "250"}
    run_release(deploy)
    authority = LiveServer(tmp_path / "authority", **deploy)
    reader = LiveServer(tmp_path / "reader", **deploy)
    app = build_app(postgres_url, REDIS_URL=redis_url)
    watcher = socketio_client.Client()
    frames: list[dict] = []
    heard = threading.Lock()

    @watcher.on("leaderboard")
    def on_leaderboard(frame):
        with heard:
            frames.append(frame)

    try:
        # The first web process takes the price authority (no `feed` process runs); the
        # second, started once it holds it, stands by and only serves pages and sockets.
        authority.start(timeout=60)
        wait_for(lambda: Redis.from_url(redis_url).exists(LOCK_KEY), timeout=60, message="the price authority taken")
        wait_for(lambda: "starts run_feed_service" in authority.log_path.read_text(), timeout=30,
                 message="the first web process running the feed")
        reader.start(timeout=60)

        with app.app_context():
            cid, people = live_competition(3)
            slug = db.session.get(Competition, cid).slug
            emails = [db.session.get(User, user_id).email for _, user_id in people]
            db.session.remove()
        (buyer, _), (seller, _), (idle, _) = people

        # Orders through the process that does not run the engine: the engine (in the
        # other) hears of the positions over Redis and values them on its ticks.
        place_market_order(log_in(reader.url, emails[0]), reader.url, slug, "BUY", "0.50")
        place_market_order(log_in(reader.url, emails[1]), reader.url, slug, "SELL", "0.20")

        watcher.connect(reader.url, transports=["websocket"], wait_timeout=30)
        joined = watcher.call("competition_watch", {"id": cid}, timeout=30)
        assert joined["id"] == cid and joined["seats_taken"] == 3, joined

        # The same trader reads the board from each process (one session per process).
        readers = [(authority.url, log_in(authority.url, emails[2])), (reader.url, log_in(reader.url, emails[2]))]

        def valued(rows) -> bool:  # every position valued by the engine: both traders moved off 10,000.00
            equities = {pid: equity for pid, _, equity, _ in rows}
            return (len(rows) == 3 and equities[buyer] != "10000.00" and equities[seller] != "10000.00"
                    and equities[idle] == "10000.00")

        def the_same_board():
            """One read from the reader between two reads from the authority that agree: no
            re-rank fell between them (one a second), so the reader must serve exactly that."""
            (base_a, session_a), (base_b, session_b) = readers
            before = board(session_a, base_a, cid)
            seen = board(session_b, base_b, cid)
            after = board(session_a, base_a, cid)
            if before != after or not valued(before[1]):
                return None
            return before, seen

        first, second = wait_for(the_same_board, timeout=45, interval=0.2, message="a valued board")
        fragment_a, rows_a, counts_a = first
        fragment_b, rows_b, counts_b = second
        assert rows_b == rows_a  # same order, same ranks, same equities, same trade counts
        assert counts_b == counts_a == {"id": cid, "view": "live", "participants": 3,
                                        "above_start": sum(float(e) > 10000 for _, _, e, _ in rows_a)}
        assert fragment_b == fragment_a  # and the very same page (the reader's own pinned row too)
        assert [rank for _, rank, _, _ in rows_a] == [1, 2, 3]
        assert [float(e) for _, _, e, _ in rows_a] == sorted((float(e) for _, _, e, _ in rows_a), reverse=True)
        assert {pid: trades for pid, _, _, trades in rows_a} == {buyer: 1, seller: 1, idle: 0}

        # The room competition:<id> on the reader gets the authority's frames (over the
        # Redis message queue), and they are the board the reader's page serves.
        wait_for(lambda: any(f["id"] == cid for f in frames), timeout=30, message="a leaderboard frame on the reader")

        def frame_matches_page():
            with heard:
                latest = frames[-1]
            rows = board(readers[1][1], reader.url, cid)[1]
            framed = [(r["participant_id"], r["rank"], r["equity"], r["trades"]) for r in latest["rows"]]
            return framed == rows and valued(rows) and latest

        latest = wait_for(frame_matches_page, timeout=30, interval=0.2, message="the frame the page shows")
        assert latest["view"] == "live" and latest["counts"]["participants"] == 3

        # The authority's process goes away (a restart): the reader takes the authority,
        # rebuilds the board from the database and keeps the same room and pages going.
        assert "starts run_feed_service" not in reader.log_path.read_text()  # so far it only read the board
        authority.stop()
        stopped_ms = int(time.time() * 1000)
        wait_for(lambda: "starts run_feed_service" in reader.log_path.read_text(), timeout=30,
                 message="the reader taking the price authority")
        after = wait_for(lambda: (found := frame_matches_page()) and found["at_ms"] > stopped_ms and found,
                         timeout=30, interval=0.2, message="the reader's own frames, as its page shows them")
        assert {(r["participant_id"], r["trades"]) for r in after["rows"]} == {(buyer, 1), (seller, 1), (idle, 0)}
    finally:
        if watcher.connected:
            watcher.disconnect()
        reader.stop()
        authority.stop()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
