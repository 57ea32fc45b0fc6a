"""Crash recovery with the real app: trades placed over HTTP, the process SIGKILLed before
their expiry, restarted after it; then SIGKILLed again with trades still open, restarted at
once. Every trade is settled once, at the tick recorded at its own expiry (or refunded when
that expiry lies in a recorded gap of ticks the killed feed made but never wrote), and the
balance is exactly what the trades imply."""

from __future__ import annotations

import re
import time
from decimal import Decimal

import pytest
import requests
from sqlalchemy import select

from edutradex.auth.models import User
from edutradex.binary.models import Trade
from edutradex.binary.settlement import decide
from edutradex.extensions import db
from edutradex.market.models import TickGap
from edutradex.market.ticks import gaps_overlapping, tick_at_or_before

pytestmark = pytest.mark.slow
SYMBOL = "OTC_EUR_USD"
KEY = re.compile(r'id="idempotency-key" name="idempotency_key" value="([^"]+)"')
CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def register(base: str) -> requests.Session:
    session = requests.Session()
    token = CSRF.search(session.get(base + "/register", timeout=10).text).group(1)
    response = session.post(base + "/register", timeout=10, data={
        "csrf_token": token, "name": "Crash Tester", "email": "crash@example.com",
        "password": "correct-horse-1", "confirm": "correct-horse-1"})
    assert response.status_code == 200 and "Log out" in response.text
    return session


def place(session: requests.Session, base: str, direction: str, stake: str, duration: int) -> None:
    deadline = time.monotonic() + 15
    while True:  # the feed needs a moment after start-up to publish the first quote
        html = session.get(f"{base}/trade/{SYMBOL}", timeout=10).text
        response = session.post(base + "/trade/place", timeout=10, headers={
            "HX-Request": "true", "X-CSRFToken": CSRF.search(html).group(1)}, data={
            "symbol": SYMBOL, "direction": direction, "stake": stake, "duration": str(duration),
            "idempotency_key": KEY.search(html).group(1)})
        if response.status_code == 200 or time.monotonic() > deadline:
            assert response.status_code == 200, response.text
            return
        time.sleep(0.2)


def wait_until_settled(trade_ids: list[int], timeout: float = 40) -> list[Trade]:
    """The trades, once none of them is OPEN (or as they are at the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        trades = db.session.scalars(select(Trade).where(Trade.id.in_(trade_ids)).order_by(Trade.id)).all()
        if all(t.status != "OPEN" for t in trades) or time.monotonic() > deadline:
            return trades
        db.session.remove()
        time.sleep(0.2)


def assert_settled_at_their_expiry(trades: list[Trade]) -> None:
    """Each trade SETTLED, at the tick recorded at or before its own expiry, paid by the rules;
    one whose expiry lies in a recorded gap of lost ticks is refunded (PRICE_GAP), as settlement does."""
    assert [t.status for t in trades] == ["SETTLED"] * len(trades)
    for trade in trades:
        exit_tick = tick_at_or_before(SYMBOL, trade.expires_ms)
        since = max(trade.entry_ts_ms, exit_tick.ts_ms if exit_tick else trade.entry_ts_ms)
        across_gap = any(gap.from_ms <= trade.expires_ms and gap.to_ms > since
                         for gap in gaps_overlapping(SYMBOL, since + 1, trade.expires_ms))
        result, rule = decide(trade.direction, trade.entry_price, trade.entry_ts_ms, exit_tick, across_gap)
        assert (trade.result, trade.rule) == (result, rule)
        if rule == "COMPARE":
            # the tick recorded at or before the expiry
            assert trade.exit_tick_id == exit_tick.id and trade.exit_price == exit_tick.mid
            assert trade.exit_ts_ms <= trade.expires_ms
        expected = {"WIN": trade.potential_payout, "TIE": trade.stake, "LOSS": Decimal("0.00")}[trade.result]
        assert trade.payout == expected


def test_trades_survive_a_sigkill_and_settle_at_their_own_expiry(binary_live):
    server, checker = binary_live
    session = register(server.url)
    stakes = ["10.00", "25.50", "7.25", "100.00", "1.00", "40.00"]
    for i, stake in enumerate(stakes):
        place(session, server.url, "UP" if i % 2 == 0 else "DOWN", stake, 5)
        time.sleep(0.15)

    server.kill()  # SIGKILL within a second of placing: nothing has expired yet
    with checker.app_context():
        trades = db.session.scalars(select(Trade)).all()
        assert len(trades) == len(stakes) and all(t.status == "OPEN" for t in trades)
        last_expiry = max(t.expires_ms for t in trades)
        user_id = trades[0].user_id
        first_ids = [t.id for t in trades]
        db.session.remove()
    time.sleep(max(0.0, last_expiry / 1000 - time.time()) + 1.0)  # down over every expiry

    server.start()
    with checker.app_context():
        trades = wait_until_settled(first_ids)
        # the killed feed's unwritten ticks are lost: the restart records that stretch as a gap
        [gap] = db.session.scalars(select(TickGap)).all()
        assert gap.reason == "authority_lost" and gap.from_ms <= min(t.expires_ms for t in trades)
        assert_settled_at_their_expiry(trades)
        # every trade expired while the feed was down, after ticks it made were lost: no
        # recorded price is the price at their expiry, so each is refunded, not guessed
        assert {t.rule for t in trades} == {"PRICE_GAP"}
        balance = db.session.get(User, user_id).demo_balance
        assert balance == Decimal("10000.00") - sum(t.stake for t in trades) + sum(t.payout for t in trades)
        db.session.remove()

    # Exactly once across a second SIGKILL, with trades still open at the kill: a 5 s
    # trade (settled, or about to be, when the process dies) and 15 s trades (open).
    place(session, server.url, "UP", "12.00", 5)
    for i, stake in enumerate(["13.00", "14.50", "3.00"]):
        place(session, server.url, "DOWN" if i % 2 == 0 else "UP", stake, 15)
    with checker.app_context():
        first_expiry = db.session.scalar(select(Trade.expires_ms).where(Trade.id.notin_(first_ids)).order_by(Trade.id))
        db.session.remove()
    time.sleep(max(0.0, first_expiry / 1000 - time.time()) + 1.5)
    server.kill()
    with checker.app_context():
        at_kill = db.session.scalars(select(Trade).where(Trade.id.notin_(first_ids)).order_by(Trade.id)).all()
        assert len(at_kill) == 4
        open_at_kill = [t.id for t in at_kill if t.status == "OPEN"]
        assert open_at_kill, "nothing was open at the kill: the restart below would prove nothing"
        # what was settled before the kill, as it was then (it must not change again)
        settled_at_kill = {t.id: (t.settled_at, t.result, t.payout) for t in at_kill if t.status == "SETTLED"}
        balance_at_kill = db.session.get(User, user_id).demo_balance
        assert balance_at_kill == balance - sum(t.stake for t in at_kill) + sum(p for _, _, p in settled_at_kill.values())
        db.session.remove()

    server.start()
    with checker.app_context():
        reopened = wait_until_settled(open_at_kill)
        assert_settled_at_their_expiry(reopened)
        after = db.session.scalars(select(Trade).where(Trade.id.notin_(first_ids)).order_by(Trade.id)).all()
        assert {t.id: (t.settled_at, t.result, t.payout) for t in after if t.id in settled_at_kill} == settled_at_kill
        # each trade open at the kill was paid once: the balance moved by exactly their payouts
        assert db.session.get(User, user_id).demo_balance == balance_at_kill + sum(t.payout for t in reopened)
        db.session.remove()
