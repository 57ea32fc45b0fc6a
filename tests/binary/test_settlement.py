"""Settlement: the exit price is the tick recorded at or before expiry, exactly once,
set-based, with the result reaching the trader after the commit."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from sqlalchemy import event, func, select

from edutradex.auth.models import User
from edutradex.binary import settlement
from edutradex.binary.models import Trade
from edutradex.binary.service import place_trade
from edutradex.binary.settlement import due_batches, run_clock_cycle, settle_due_trades, settle_overdue
from edutradex.core.events import user_room
from edutradex.extensions import db, socketio
from edutradex.market import quotes, store
from edutradex.market.models import TickGap
from edutradex.market.quotes import now_ms
from tests.binary.conftest import add_tick, make_market, stored_through, tick_and_quote
from tests.factories import make_user

SYMBOL = "OTC_EUR_USD"
_keys = iter(range(10**6))
_clock = None


def place(user_id: int, direction: str, stake: str = "10.00", duration: int = 5) -> Trade:
    return place_trade(user_id, SYMBOL, direction, stake, duration, f"key-{next(_keys):08d}")


def reload(trade_id: int) -> Trade:
    db.session.expire_all()
    return db.session.get(Trade, trade_id)


def balance(user_id: int) -> Decimal:
    db.session.expire_all()
    return db.session.get(User, user_id).demo_balance


@pytest.fixture
def ctx(db_app, clock):
    global _clock
    _clock = clock
    with db_app.app_context():
        make_market(SYMBOL)
        yield make_user().id


def settle_at(up_to_ms: int, now: int | None = None):
    """The settler runs at `now` (default: the batch's limit)."""
    _clock.ms = up_to_ms if now is None else now
    return settle_due_trades(SYMBOL, up_to_ms)


def entered(user_id: int, direction: str, mid: str = "1.10000", stake: str = "10.00") -> Trade:
    tick_and_quote(SYMBOL, mid)
    return place(user_id, direction, stake)


def test_win_loss_and_tie_pay_what_the_rules_say(ctx):
    up = entered(ctx, "UP")
    down = entered(ctx, "DOWN")
    assert balance(ctx) == Decimal("9980.00")
    add_tick(SYMBOL, up.expires_ms - 100, "1.10020")  # the exit price: higher
    add_tick(SYMBOL, down.expires_ms + 1, "1.09000")  # after expiry: proves the exit is final, not used
    settled = settle_at(down.expires_ms)
    assert {s.id: s.result for s in settled} == {up.id: "WIN", down.id: "LOSS"}
    up, down = reload(up.id), reload(down.id)
    assert (up.status, up.result, up.payout, up.exit_price) == ("SETTLED", "WIN", Decimal("18.00"), Decimal("1.10020"))
    assert (down.status, down.result, down.payout) == ("SETTLED", "LOSS", Decimal("0.00"))
    assert up.profit == Decimal("8.00") and down.profit == Decimal("-10.00")
    assert balance(ctx) == Decimal("9998.00")


def test_down_wins_when_price_falls(ctx):
    down = entered(ctx, "DOWN")
    add_tick(SYMBOL, down.expires_ms - 1, "1.09999")
    add_tick(SYMBOL, down.expires_ms + 50, "1.20000")
    [result] = settle_at(down.expires_ms)
    assert result.result == "WIN" and result.exit_price == Decimal("1.09999")
    assert balance(ctx) == Decimal("10008.00")


def test_exit_tick_exactly_at_expiry_counts(ctx):
    trade = entered(ctx, "UP")
    add_tick(SYMBOL, trade.expires_ms - 300, "1.09000")
    at_expiry = add_tick(SYMBOL, trade.expires_ms, "1.10500")
    add_tick(SYMBOL, trade.expires_ms + 1, "1.00000")
    settle_at(trade.expires_ms)
    trade = reload(trade.id)
    assert (trade.result, trade.exit_tick_id, trade.exit_ts_ms) == ("WIN", at_expiry.id, trade.expires_ms)
    assert trade.exit_price == Decimal("1.10500") and trade.rule == "COMPARE"


def test_equal_price_is_a_tie_and_returns_the_stake(ctx):
    trade = entered(ctx, "DOWN")
    add_tick(SYMBOL, trade.expires_ms - 10, "1.10000")
    add_tick(SYMBOL, trade.expires_ms + 10, "1.30000")
    settle_at(trade.expires_ms)
    trade = reload(trade.id)
    assert (trade.result, trade.rule, trade.payout) == ("TIE", "COMPARE", Decimal("10.00"))
    assert balance(ctx) == Decimal("10000.00")


def test_no_tick_between_entry_and_expiry_is_a_tie_with_refund(ctx):
    trade = entered(ctx, "UP")
    add_tick(SYMBOL, trade.expires_ms + 10, "1.50000")  # only after expiry: nothing happened before
    settle_at(trade.expires_ms)
    trade = reload(trade.id)
    assert (trade.result, trade.rule, trade.payout, trade.exit_tick_id) == ("TIE", "NO_NEW_TICK", Decimal("10.00"), None)
    assert balance(ctx) == Decimal("10000.00")


def test_spread_moves_do_not_matter_only_the_mid(ctx):
    """Entry and exit are both mids: a wider spread with the same mid is a tie."""
    trade = entered(ctx, "UP")
    add_tick(SYMBOL, trade.expires_ms - 10, "1.10000", half_spread="0.00100")  # ask rose, bid fell
    add_tick(SYMBOL, trade.expires_ms + 10, "1.10000")
    settle_at(trade.expires_ms)
    assert reload(trade.id).result == "TIE"


def test_prices_are_compared_to_every_recorded_digit(ctx):
    """A half-pip mid (6th decimal on a 5-decimal market) is not rounded into a tie."""
    up = entered(ctx, "UP", mid="1.10000")
    down = entered(ctx, "DOWN", mid="1.10000")
    add_tick(SYMBOL, up.expires_ms - 1, "1.100005")
    add_tick(SYMBOL, down.expires_ms + 10, "1.10000")
    settle_at(down.expires_ms)
    assert reload(up.id).result == "WIN" and reload(down.id).result == "LOSS"


def test_payout_uses_the_half_even_potential_payout(ctx):
    tick_and_quote(SYMBOL, "1.1")
    from edutradex.market.models import Market

    market = db.session.scalar(select(Market))
    market.payout_percent = Decimal("8.50")
    db.session.commit()
    trade = place(ctx, "UP", stake="1.50")  # 1.50 * 1.085 = 1.6275 -> 1.63 (half-even)
    assert trade.potential_payout == Decimal("1.63")
    add_tick(SYMBOL, trade.expires_ms, "1.2")
    add_tick(SYMBOL, trade.expires_ms + 1, "1.2")
    settle_at(trade.expires_ms)
    assert reload(trade.id).payout == Decimal("1.63")
    assert balance(ctx) == Decimal("10000.13")


def test_not_settled_before_the_exit_price_is_final(ctx):
    trade = entered(ctx, "UP")
    add_tick(SYMBOL, trade.expires_ms - 10, "1.2")
    # No tick after the expiry yet and still within the grace: a later tick at or before
    # the expiry could still be persisted, so the trade waits.
    assert settle_at(trade.expires_ms, now=trade.expires_ms + 5000) == []
    assert reload(trade.id).status == "OPEN"
    add_tick(SYMBOL, trade.expires_ms + 5000, "1.0")
    [settled] = settle_at(trade.expires_ms, now=trade.expires_ms + 5001)
    assert settled.result == "WIN" and settled.exit_price == Decimal("1.2")


def test_a_quiet_market_settles_once_the_watermark_passes_its_expiry(ctx):
    trade = entered(ctx, "UP")
    add_tick(SYMBOL, trade.expires_ms - 10, "1.2")
    # however late: until the store says every tick up to the expiry is written, a tick
    # at or before it may still be on its way (in the feed's buffer, in a failed batch)
    assert settle_at(trade.expires_ms, now=trade.expires_ms + 60_000) == []
    stored_through(trade.expires_ms)  # the feed flushed past the expiry with no new tick of this market
    [settled] = settle_at(trade.expires_ms, now=trade.expires_ms + 60_001)
    assert settled.result == "WIN" and settled.exit_price == Decimal("1.2")


def authority_writer(**options) -> tuple[store.TickWriter, store.TickIds]:
    writer = store.TickWriter(flush_interval=0, **options)
    writer.epoch = store.take_authority(quotes.now_ms())
    return writer, store.TickIds()


def buffered(writer: store.TickWriter, ids: store.TickIds, ts_ms: int, mid: str) -> None:
    price = Decimal(mid)
    writer.add(store.TickRow(ids.next(), SYMBOL, ts_ms, price, price, price, "SIM", writer.epoch))


def test_a_failed_flush_across_an_expiry_settles_at_the_right_tick_once_it_succeeds(ctx, monkeypatch):
    trade = entered(ctx, "UP")
    writer, ids = authority_writer()
    buffered(writer, ids, trade.expires_ms - 300, "1.2")
    assert writer.flush(trade.expires_ms - 200) == 1
    buffered(writer, ids, trade.expires_ms - 50, "1.0")  # the exit tick: UP loses
    buffered(writer, ids, trade.expires_ms + 100, "1.3")
    original = type(db.engine).begin
    monkeypatch.setattr(type(db.engine), "begin", lambda self: (_ for _ in ()).throw(RuntimeError("store down")))
    assert writer.flush(trade.expires_ms + 200) == 0 and len(writer.buffer) == 2
    monkeypatch.setattr(type(db.engine), "begin", original)
    # long past the expiry, the exit tick is still only in the buffer: the trade waits
    assert settle_at(trade.expires_ms, now=trade.expires_ms + 60_000) == []
    assert writer.flush(trade.expires_ms + 60_000) == 2
    [settled] = settle_at(trade.expires_ms, now=trade.expires_ms + 60_001)
    assert (settled.result, settled.exit_price, settled.exit_ts_ms) == ("LOSS", Decimal("1.0"), trade.expires_ms - 50)


def test_ticks_dropped_from_a_full_buffer_are_a_gap_settlement_never_prices_across(ctx):
    trade = entered(ctx, "UP")
    writer, ids = authority_writer(max_buffer=2)
    buffered(writer, ids, trade.expires_ms - 300, "1.2")
    writer.flush(trade.expires_ms - 200)
    buffered(writer, ids, trade.expires_ms - 50, "1.0")  # the exit tick, dropped below
    buffered(writer, ids, trade.expires_ms + 100, "1.3")
    buffered(writer, ids, trade.expires_ms + 150, "1.3")
    assert writer.dropped == 1
    assert writer.flush(trade.expires_ms + 200) == 2
    [gap] = db.session.scalars(select(TickGap)).all()
    assert (gap.symbol, gap.from_ms, gap.to_ms, gap.ticks_lost, gap.reason) == \
           (SYMBOL, trade.expires_ms - 50, trade.expires_ms - 50, 1, "buffer_full")
    # the tick stored before the gap (1.2, a WIN) is not the price at expiry: refunded
    [settled] = settle_at(trade.expires_ms)
    assert (settled.result, settled.rule, settled.payout) == ("TIE", "PRICE_GAP", trade.stake)
    assert balance(ctx) == Decimal("10000.00")


def test_settling_twice_pays_once(ctx):
    trade = entered(ctx, "UP")
    add_tick(SYMBOL, trade.expires_ms, "1.2")
    add_tick(SYMBOL, trade.expires_ms + 1, "1.2")
    assert len(settle_at(trade.expires_ms)) == 1
    assert settle_at(trade.expires_ms) == []
    assert settle_overdue() == 0
    assert balance(ctx) == Decimal("10008.00")


def test_a_burst_is_settled_set_based(ctx, db_app):
    """Many trades with many distinct expiries: a handful of statements, not one per trade."""
    users = [ctx] + [make_user().id for _ in range(4)]
    trades = []
    entry_ms = 0
    for i in range(60):
        entry_ms = max(entry_ms + 1, now_ms())  # distinct entry times, each quote fresh
        tick_and_quote(SYMBOL, "1.10000", ts_ms=entry_ms)
        trades.append(place(users[i % 5], "UP" if i % 2 else "DOWN"))
    expiries = sorted(t.expires_ms for t in trades)
    add_tick(SYMBOL, expiries[30], "1.20000")
    add_tick(SYMBOL, expiries[-1] + 1, "1.20000")

    statements = []
    engine = db.engine

    def count(conn, cursor, statement, *args):
        statements.append(statement.split()[0] + " " + statement.split()[2 if statement.startswith("UPDATE") else -1])

    event.listen(engine, "before_cursor_execute", count)
    try:
        settled = settle_at(expiries[-1])
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(settled) == 60
    assert len(statements) <= 10, statements
    ups = [s for s in settled if s.direction == "UP"]
    wins = [s for s in ups if s.result == "WIN"]
    assert wins and all(s.exit_price == Decimal("1.20000") for s in wins)
    total = db.session.scalar(select(func.sum(User.demo_balance)))
    paid = sum(s.payout for s in settled)
    assert total == Decimal("10000.00") * 5 - Decimal("10.00") * 60 + paid


def test_results_reach_the_trader_after_commit(app, client, auth, clock):
    global _clock
    _clock = clock
    with app.app_context():
        make_market(SYMBOL)
        user_id = make_user("trader@example.com").id
    auth.login("trader@example.com")
    sio = socketio.test_client(app, flask_test_client=client)
    assert sio.is_connected()
    with app.app_context():
        trade = entered(user_id, "UP")
        add_tick(SYMBOL, trade.expires_ms, "1.2")
        add_tick(SYMBOL, trade.expires_ms + 1, "1.2")
        settle_at(trade.expires_ms)
        trade_id = trade.id
    received = {m["name"]: m["args"][0] for m in sio.get_received()}
    assert received["trade_settled"]["id"] == trade_id
    assert received["trade_settled"]["result"] == "WIN" and received["trade_settled"]["payout"] == "18.00"
    assert received["balance"] == {"demo_balance": "10008.00"}
    assert user_room(user_id) == f"user:{user_id}"


def settled_event(sio, timeout: float = 5.0) -> dict | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in sio.get_received():
            if message["name"] == "trade_settled":
                return message["args"][0]
        time.sleep(0.02)
    return None


def test_a_burst_is_announced_in_the_background_with_the_market_named(app, client, auth, clock, monkeypatch):
    monkeypatch.setattr(settlement, "ANNOUNCE_INLINE_MAX", 0)  # one trade counts as a burst
    global _clock
    _clock = clock
    with app.app_context():
        make_market(SYMBOL)
        user_id = make_user("trader@example.com").id
    auth.login("trader@example.com")
    sio = socketio.test_client(app, flask_test_client=client)
    with app.app_context():
        trade = entered(user_id, "UP")
        add_tick(SYMBOL, trade.expires_ms + 1, "1.2")
        settle_at(trade.expires_ms)
        trade_id = trade.id
    event = settled_event(sio)
    assert event is not None and event["id"] == trade_id and event["market_name"]


def test_an_rq_job_announces_its_burst_before_it_returns(app, client, auth, clock, monkeypatch):
    """A job's process ends with the job: a background task would be cut off."""
    monkeypatch.setattr(settlement, "ANNOUNCE_INLINE_MAX", 0)
    started = []
    monkeypatch.setattr(socketio, "start_background_task", lambda *args: started.append(args))
    with app.app_context():
        make_market(SYMBOL)
        user_id = make_user("trader@example.com").id
    auth.login("trader@example.com")
    sio = socketio.test_client(app, flask_test_client=client)
    with app.app_context():
        trade = entered(user_id, "UP")
        add_tick(SYMBOL, trade.expires_ms + 1, "1.2")
        clock.ms = trade.expires_ms + 1000
        assert settlement.settle_batch(SYMBOL, trade.expires_ms // 1000) == 1
        trade_id = trade.id
    received = [m["args"][0] for m in sio.get_received() if m["name"] == "trade_settled"]
    assert [event["id"] for event in received] == [trade_id] and not started


def test_a_batch_looks_its_market_name_up_once_not_once_per_trade(ctx, monkeypatch):
    looked_up = []
    monkeypatch.setattr(settlement, "market_name", lambda symbol: looked_up.append(symbol) or "EUR/USD OTC")
    trades = [entered(ctx, "UP") for _ in range(3)]
    add_tick(SYMBOL, trades[-1].expires_ms + 1, "1.2")
    assert len(settle_at(trades[-1].expires_ms)) == 3
    assert looked_up == [SYMBOL]


def test_clock_cycle_settles_due_batches(ctx):
    first = entered(ctx, "UP")
    second = entered(ctx, "DOWN", mid="1.10010")
    add_tick(SYMBOL, first.expires_ms, "1.10005")
    add_tick(SYMBOL, second.expires_ms + 1, "1.3")
    assert due_batches(first.expires_ms - 1) == []
    batches = due_batches(second.expires_ms)
    assert {sec for _, sec in batches} == {first.expires_ms // 1000, second.expires_ms // 1000}
    assert all(symbol == SYMBOL for symbol, _ in batches)
    _clock.ms = second.expires_ms + 2
    assert run_clock_cycle(second.expires_ms + 2) == len(batches)
    assert reload(first.id).result == "WIN" and reload(second.id).result == "WIN"  # 1.10005 < 1.10010
    assert run_clock_cycle(second.expires_ms + 2) == 0


def test_recovery_settles_the_backlog_each_at_its_own_expiry(ctx):
    trades = [entered(ctx, "UP") for _ in range(3)]
    base = max(t.expires_ms for t in trades)
    table = Trade.__table__
    for i, trade in enumerate(trades):  # expiries one second apart, in different batches
        db.session.execute(table.update().where(table.c.id == trade.id).values(expires_ms=base + i * 1000))
    db.session.commit()
    for i, mid in enumerate(["1.10010", "1.09990", "1.10000"]):
        add_tick(SYMBOL, base + i * 1000, mid)
    add_tick(SYMBOL, base + 60_000, "9.0")  # much later (when the server came back): never used
    _clock.ms = base + 120_000
    assert settle_overdue() == 3
    results = [reload(t.id) for t in trades]
    assert [t.exit_price for t in results] == [Decimal("1.10010"), Decimal("1.09990"), Decimal("1.10000")]
    assert [t.result for t in results] == ["WIN", "LOSS", "TIE"]
    assert balance(ctx) == Decimal("10000.00") - 30 + Decimal("18.00") + Decimal("10.00")
    assert settle_overdue() == 0


def test_reset_cancels_open_trades_and_a_late_settler_pays_nothing(ctx):
    from edutradex.auth.service import reset_demo_balance

    trade = entered(ctx, "UP")
    assert balance(ctx) == Decimal("9990.00")
    reset_demo_balance(ctx)
    assert balance(ctx) == Decimal("10000.00")
    cancelled = reload(trade.id)
    assert (cancelled.status, cancelled.rule, cancelled.payout) == ("CANCELLED", "RESET", Decimal("0.00"))
    add_tick(SYMBOL, trade.expires_ms, "1.2")
    add_tick(SYMBOL, trade.expires_ms + 1, "1.2")
    assert settle_at(trade.expires_ms) == []
    assert balance(ctx) == Decimal("10000.00")


def test_a_flush_of_the_authority_wakes_the_clock_at_once(db_app):
    """After each batch the authority writes, its tick listener wakes the settlement clock
    of the same process: a trade that just became due does not wait for the clock's next
    interval (0.2 s by default, 30 s here)."""
    import threading

    assert settlement.nudge_after_flush in db_app.extensions["tick_listeners"]
    began = time.monotonic()
    clock_pause = threading.Thread(target=settlement.wait_for_due, args=(db_app, 30))
    clock_pause.start()
    time.sleep(0.1)
    assert clock_pause.is_alive()  # nothing written yet: the clock waits
    with db_app.app_context():
        settlement.nudge_after_flush([])  # what the feed does after a flush committed
    clock_pause.join(5)
    assert not clock_pause.is_alive() and time.monotonic() - began < 5
