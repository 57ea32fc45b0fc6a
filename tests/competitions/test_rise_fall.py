"""RISE_FALL competitions: rise/fall trades with the competition account (never the demo
balance, never the ledger), every refusal changing nothing, every trade settled at its
own expiry tick before the standings, rebuys refused while a trade is open."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from edutradex.auth.models import User
from edutradex.auth.service import reset_demo_balance
from edutradex.binary.models import Trade
from edutradex.binary.service import place_trade
from edutradex.binary.settlement import settle_due_trades
from edutradex.competitions import lifecycle, positions, service
from edutradex.competitions.models import Competition, Participant
from edutradex.competitions.rise_fall import SettlementPending, place_competition_trade, to_ms
from edutradex.errors import DomainError
from edutradex.extensions import db
from edutradex.market.models import TickGap
from edutradex.settings import set_setting
from edutradex.types import utcnow
from edutradex.wallet.models import LedgerEntry
from tests.binary.conftest import (  # noqa: F401 - the fixtures
    add_tick,
    clock,
    live_quote,
    make_market,
    stored_through,
    tick_and_quote,
)
from tests.competitions.conftest import assert_books_balance, open_competition, trader
from tests.support.concurrency import run_in_threads
from tests.support.quotes import fresh_quotes  # noqa: F401 - autouse: no quote outlives a test

D = Decimal
SYMBOL = "OTC_EUR_USD"
CAPITAL = D("1000.00")
_keys = itertools.count(1)


def key() -> str:
    return f"rf-key-{next(_keys):08d}"


def live_rise_fall(users: list[int], **overrides) -> Competition:
    """A RISE_FALL competition, LIVE now, that ends in an hour, with these traders in it."""
    competition = open_competition(**{"kind": "RISE_FALL", "starting_capital": str(CAPITAL), "entry_fee": "5.00",
                                      **overrides})
    for user_id in users:
        service.join_competition(competition.id, user_id)
    now = utcnow()
    db.session.execute(update(Competition).where(Competition.id == competition.id).values(
        registration_closes_at=now - timedelta(minutes=1), start_at=now - timedelta(seconds=30),
        end_at=now + timedelta(hours=1)))
    db.session.commit()
    assert lifecycle.start_competition(competition.id, now) == "LIVE"
    return db.session.get(Competition, competition.id, populate_existing=True)


def account(competition_id: int, user_id: int) -> Participant:
    db.session.expire_all()
    return db.session.scalar(select(Participant).where(Participant.competition_id == competition_id,
                                                       Participant.user_id == user_id))


def demo(user_id: int) -> Decimal:
    db.session.expire_all()
    return db.session.get(User, user_id).demo_balance


def reload(trade_id: int) -> Trade:
    db.session.expire_all()
    return db.session.get(Trade, trade_id)


def ledger_count() -> int:
    return db.session.scalar(select(func.count()).select_from(LedgerEntry))


def trade_in(competition_id: int, user_id: int, direction: str = "UP", stake: str = "10.00", duration: int = 5,
             mid: str = "1.10000", idempotency_key: str | None = None) -> Trade:
    tick_and_quote(SYMBOL, mid)
    return place_competition_trade(competition_id, user_id, SYMBOL, direction, stake, duration,
                                   idempotency_key or key())


_clock = None


@pytest.fixture
def ctx(db_app, clock):  # noqa: F811 - the settlement clock fixture
    global _clock
    _clock = clock
    with db_app.app_context():
        make_market(SYMBOL)
        yield db_app


def settle_at(up_to_ms: int):
    """The settlement clock, run at `up_to_ms`."""
    _clock.ms = up_to_ms
    return settle_due_trades(SYMBOL, up_to_ms)


def test_a_trade_uses_the_competition_account_and_settles_back_into_it(ctx):
    user = trader()
    competition = live_rise_fall([user])
    entries = ledger_count()
    trade = trade_in(competition.id, user, "UP", "10.00")
    assert trade.participant_id == account(competition.id, user).id
    me = account(competition.id, user)
    assert (me.cash, me.equity, me.trades_count) == (D("990.00"), D("990.00"), 1)
    assert demo(user) == D("10000.00")
    add_tick(SYMBOL, trade.expires_ms - 100, "1.10020")  # higher at expiry: a win
    add_tick(SYMBOL, trade.expires_ms + 1, "1.00000")
    [settled] = settle_at(trade.expires_ms)
    assert (settled.result, settled.payout, settled.participant_id) == ("WIN", D("18.00"), me.id)
    me = account(competition.id, user)
    assert (me.cash, me.equity) == (D("1008.00"), D("1008.00"))
    assert demo(user) == D("10000.00")
    assert ledger_count() == entries  # points, never credits
    assert_books_balance(ctx)


def test_a_price_gap_refunds_the_stake_to_the_competition_account(ctx):
    user = trader()
    competition = live_rise_fall([user])
    trade = trade_in(competition.id, user, "UP")
    add_tick(SYMBOL, trade.expires_ms - 200, "1.20000")
    db.session.add(TickGap(symbol=SYMBOL, from_ms=trade.expires_ms - 50, to_ms=trade.expires_ms - 50, ticks_lost=1,
                           reason="buffer_full"))
    db.session.commit()
    add_tick(SYMBOL, trade.expires_ms + 1, "1.20000")
    [settled] = settle_at(trade.expires_ms)
    assert (settled.result, settled.rule, settled.payout) == ("TIE", "PRICE_GAP", D("10.00"))
    assert account(competition.id, user).cash == CAPITAL


def test_a_replayed_form_places_one_trade_and_debits_once(ctx):
    user = trader()
    competition = live_rise_fall([user])
    first = trade_in(competition.id, user, idempotency_key="same-form-key")
    again = trade_in(competition.id, user, idempotency_key="same-form-key")
    assert first.id == again.id
    assert account(competition.id, user).cash == D("990.00")
    assert account(competition.id, user).trades_count == 1


def assert_refused(competition_id: int, user_id: int, message: str, field: str | None = None, **trade):
    before = (db.session.scalar(select(func.count()).select_from(Trade)), ledger_count())
    me = account(competition_id, user_id)
    cash = None if me is None else (me.cash, me.equity, me.trades_count)
    with pytest.raises(DomainError) as refused:
        trade_in(competition_id, user_id, **trade)
    assert message in refused.value.message
    assert refused.value.field == field
    assert (db.session.scalar(select(func.count()).select_from(Trade)), ledger_count()) == before
    me = account(competition_id, user_id)
    assert (None if me is None else (me.cash, me.equity, me.trades_count)) == cash
    return refused.value


def test_refused_before_the_start_and_after_the_end(ctx):
    user = trader()
    scheduled = open_competition(kind="RISE_FALL", entry_fee="0")
    service.join_competition(scheduled.id, user)
    assert_refused(scheduled.id, user, "has not started yet")
    competition = live_rise_fall([user])
    db.session.execute(update(Competition).where(Competition.id == competition.id)
                       .values(end_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert_refused(competition.id, user, "has ended")  # still LIVE: the clock has not run yet
    assert lifecycle.end_competition(competition.id)
    assert_refused(competition.id, user, "has ended")


def test_refused_for_outsiders_and_the_disqualified(ctx):
    user, outsider = trader(), trader()
    competition = live_rise_fall([user])
    assert assert_refused(competition.id, outsider, "not in this competition").status_code == 403
    service.disqualify(competition.id, user, "wash trading")
    assert assert_refused(competition.id, user, "disqualified").status_code == 403


def test_refused_when_the_trade_would_expire_after_the_end(ctx):
    user = trader()
    competition = live_rise_fall([user])
    db.session.execute(update(Competition).where(Competition.id == competition.id)
                       .values(end_at=utcnow() + timedelta(seconds=10)))
    db.session.commit()
    assert_refused(competition.id, user, "after the competition ends", "duration", duration=15)
    assert trade_in(competition.id, user, duration=5).expires_ms  # one that settles in time is fine


def test_refused_on_a_market_the_competition_does_not_allow(ctx):
    make_market("OTC_GBP_USD")
    user = trader()
    competition = live_rise_fall([user], allowed_markets="OTC_GBP_USD")
    assert_refused(competition.id, user, "is not traded in this competition")


def test_refused_when_the_stake_is_over_the_competition_cash(ctx):
    user = trader()
    competition = live_rise_fall([user], starting_capital="50.00")
    assert demo(user) == D("10000.00")  # the demo balance would cover it: irrelevant here
    error = assert_refused(competition.id, user, "holds 50.00 USD", "stake", stake="60.00")
    assert error.status_code == 409


def test_refused_for_a_cfd_competition(ctx):
    user = trader()
    competition = open_competition(entry_fee="0")
    service.join_competition(competition.id, user)
    assert_refused(competition.id, user, "not a rise/fall competition")


def test_a_demo_reset_leaves_competition_trades_alone(ctx):
    user = trader()
    competition = live_rise_fall([user])
    in_competition = trade_in(competition.id, user)
    tick_and_quote(SYMBOL, "1.10000")
    on_demo = place_trade(user, SYMBOL, "UP", "10.00", 5, key())
    reset_demo_balance(user)
    assert reload(on_demo.id).status == "CANCELLED"
    assert reload(in_competition.id).status == "OPEN"
    assert account(competition.id, user).cash == D("990.00")


def test_the_end_settles_every_trade_at_its_own_expiry_tick_before_the_standings(ctx):
    winner, loser = trader(), trader()
    competition = live_rise_fall([winner, loser])
    won = trade_in(competition.id, winner, "UP", "100.00")
    lost = trade_in(competition.id, loser, "UP", "50.00")
    add_tick(SYMBOL, won.expires_ms - 1, "1.10050")  # the price at both expiries: up
    add_tick(SYMBOL, won.expires_ms + 2000, "1.00000")  # later, when the end runs: far down, never used
    assert settle_at(won.expires_ms - 1) == []  # the settlement clock has not reached them
    entries = ledger_count()
    end = utcnow() + timedelta(hours=2)
    db.session.execute(update(Competition).where(Competition.id == competition.id).values(end_at=end - timedelta(hours=1)))
    db.session.commit()
    assert lifecycle.end_competition(competition.id, end)
    for trade_id in (won.id, lost.id):
        trade = reload(trade_id)
        assert (trade.status, trade.result, trade.exit_price) == ("SETTLED", "WIN", D("1.10050"))
    w, lo = account(competition.id, winner), account(competition.id, loser)
    assert (w.cash, w.equity, w.final_equity, w.final_rank) == (D("1080.00"), D("1080.00"), D("1080.00"), 1)
    assert (lo.cash, lo.final_equity, lo.final_rank) == (D("1040.00"), D("1040.00"), 2)
    assert ledger_count() == entries
    # the clock comes later: nothing is paid twice
    assert settle_at(won.expires_ms) == []
    assert account(competition.id, winner).cash == D("1080.00")
    assert lifecycle.settle_competition(competition.id) is not None
    assert_books_balance(ctx)


def test_the_end_waits_for_an_expiry_tick_that_is_not_stored_yet(ctx):
    user = trader()
    competition = live_rise_fall([user])
    trade = trade_in(competition.id, user, "UP", "10.00")
    end = utcnow() + timedelta(hours=2)
    db.session.execute(update(Competition).where(Competition.id == competition.id).values(end_at=end - timedelta(hours=1)))
    db.session.commit()
    with pytest.raises(SettlementPending):  # the store's watermark is behind the expiry
        lifecycle.end_competition(competition.id, end)
    db.session.expire_all()
    assert db.session.get(Competition, competition.id).status == "LIVE"
    assert reload(trade.id).status == "OPEN" and account(competition.id, user).final_equity is None
    assert lifecycle.run_lifecycle_cycle(end) == 1  # logged, retried next cycle, no crash
    add_tick(SYMBOL, trade.expires_ms, "1.09000")
    assert lifecycle.end_competition(competition.id, end)
    assert (reload(trade.id).result, account(competition.id, user).final_equity) == ("LOSS", D("990.00"))


def test_a_rebuy_is_refused_while_a_trade_is_open(ctx):
    user = trader()
    competition = live_rise_fall([user], rebuys_allowed=True, max_rebuys=1, rebuy_fee="1.00")
    trade = trade_in(competition.id, user, "UP", "10.00")
    entries = ledger_count()
    with pytest.raises(DomainError) as refused:
        service.rebuy(competition.id, user)
    assert "1 open rise/fall trade" in refused.value.message
    me = account(competition.id, user)
    assert (me.cash, me.rebuys, ledger_count()) == (D("990.00"), 0, entries)
    add_tick(SYMBOL, trade.expires_ms, "1.09000")
    settle_at(trade.expires_ms)
    assert service.rebuy(competition.id, user) == 1
    assert account(competition.id, user).cash == CAPITAL


# ---- PostgreSQL: real races ------------------------------------------------------------

def pg_competition(pg_app, users: int, **overrides) -> tuple[int, list[int]]:
    with pg_app.app_context():
        make_market(SYMBOL)
        set_setting("max_open_trades", "1000")
        db.session.commit()
        user_ids = [trader() for _ in range(users)]
        return live_rise_fall(user_ids, **overrides).id, user_ids


@pytest.mark.postgres
def test_parallel_placements_cannot_overdraw_the_competition_account(pg_app):
    competition_id, [user] = pg_competition(pg_app, 1, starting_capital="100.00")  # covers 10 stakes of 10.00
    with pg_app.app_context():
        entries = ledger_count()
    with live_quote(pg_app, SYMBOL):
        outcomes = run_in_threads(pg_app, 30, lambda i: place_competition_trade(
            competition_id, user, SYMBOL, "UP", "10.00", 60, f"parallel-{i:04d}").id)
    placed = [o for o in outcomes if isinstance(o, int)]
    refused = [o for o in outcomes if isinstance(o, DomainError)]
    assert len(placed) == 10 and len(refused) == 20, [o for o in outcomes if not isinstance(o, int | DomainError)]
    assert all("lower the stake" in e.message for e in refused)
    with pg_app.app_context():
        me = account(competition_id, user)
        assert (me.cash, me.equity, me.trades_count) == (D("0.00"), D("0.00"), 10)
        assert db.session.scalar(select(func.count()).select_from(Trade).where(Trade.participant_id == me.id)) == 10
        assert demo(user) == D("10000.00") and ledger_count() == entries
        assert_books_balance(pg_app)


@pytest.mark.postgres
def test_placements_racing_the_end_leave_no_trade_open(pg_app):
    """The end's status UPDATE and a placement exclude each other (FOR SHARE): a trade is
    either placed before the end, and settled by it, or refused after it."""
    competition_id, users = pg_competition(pg_app, 4)
    with pg_app.app_context():
        end_at = utcnow() + timedelta(seconds=20)
        db.session.execute(update(Competition).where(Competition.id == competition_id).values(end_at=end_at))
        db.session.commit()
        stored_through(to_ms(end_at) + 1)  # every expiry's price is final (no tick: a refunded tie)

    def work(i: int):
        if i == 0:
            time.sleep(0.3)
            return lifecycle.end_competition(competition_id, end_at)
        placed = []  # each trader places until the end refuses them
        for n in range(500):
            try:
                placed.append(place_competition_trade(competition_id, users[i % 4], SYMBOL, "UP", "1.00", 5,
                                                       f"race-{i:02d}-{n:04d}").id)
            except DomainError as refused:
                assert "has ended" in refused.message, refused.message
                return placed
        return placed

    with live_quote(pg_app, SYMBOL):
        outcomes = run_in_threads(pg_app, 9, work)
    assert outcomes[0] is True, outcomes[0]
    assert all(isinstance(o, list) for o in outcomes[1:]), outcomes
    placed = [trade for o in outcomes[1:] for trade in o]
    assert placed and len(placed) < 8 * 500  # trades before the end, refusals after it
    with pg_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Trade).where(Trade.status == "OPEN")) == 0
        assert db.session.scalar(select(func.count()).select_from(Trade)) == len(placed)
        for user in users:
            me = account(competition_id, user)
            assert me.cash == me.equity == me.final_equity == CAPITAL  # every stake back (no tick: a tie)


@pytest.mark.postgres
def test_a_stream_of_overlapping_placements_cannot_starve_the_end(pg_app):
    """PostgreSQL lets a new FOR SHARE join the row's lockers while an UPDATE waits, so two
    placements that always overlap would hold the end off for as long as they go on (a CI
    run saw 15 s). The advisory gate (competitions/gate.py) queues the second placement
    behind the waiting end: the end commits as soon as the first placement does, and the
    second one then sees ENDED."""
    competition_id, _ = pg_competition(pg_app, 1)
    with pg_app.app_context():
        end_at = utcnow() + timedelta(seconds=60)
        db.session.execute(update(Competition).where(Competition.id == competition_id).values(end_at=end_at))
        db.session.commit()
        stored_through(to_ms(end_at) + 1)
    seen: dict[str, object] = {}
    held = {name: threading.Event() for name in ("first", "second")}
    release = {name: threading.Event() for name in ("first", "second")}

    def placement(name: str) -> None:  # the competition under its share lock, as a placement holds it
        with pg_app.app_context():
            try:
                seen[name] = positions.hold_competition(competition_id)[0]
                held[name].set()
                release[name].wait(30)
                db.session.commit()
            finally:
                db.session.remove()

    def end() -> None:
        with pg_app.app_context():
            try:
                seen["end"] = lifecycle.end_competition(competition_id, end_at)
                seen["ended_at"] = time.monotonic()
            finally:
                db.session.remove()

    threads = {name: threading.Thread(target=target, args=args, daemon=True)
               for name, target, args in (("first", placement, ("first",)), ("end", end, ()),
                                          ("second", placement, ("second",)))}
    try:
        threads["first"].start()
        assert held["first"].wait(10) and seen["first"] == "LIVE"
        threads["end"].start()
        time.sleep(0.5)  # the end waits for the first placement
        threads["second"].start()
        time.sleep(0.5)  # the second placement arrives while the end waits
        assert "end" not in seen
        released = time.monotonic()
        release["first"].set()
        threads["end"].join(10)
        assert seen.get("end") is True, "the end is still waiting behind the second placement"
        assert seen["ended_at"] - released < 5
        assert held["second"].wait(10) and seen["second"] == "ENDED"  # it queued behind the end
    finally:
        for event in release.values():
            event.set()
        for thread in threads.values():
            thread.join(10)


def test_an_end_passed_while_the_app_was_down_settles_each_trade_at_its_expiry_then_the_prizes(ctx):
    winner, other = trader(), trader()
    competition = live_rise_fall([winner, other], prize_table={1: "100"}, platform_fee_percent="0")
    trade = trade_in(competition.id, winner, "DOWN", "40.00")
    add_tick(SYMBOL, trade.expires_ms - 5, "1.09990")  # lower at expiry: DOWN wins
    add_tick(SYMBOL, trade.expires_ms + 60_000, "1.50000")  # much later, while nothing ran
    later = utcnow() + timedelta(hours=3)  # the app comes back after the end
    assert lifecycle.run_overdue(later) >= 1
    db.session.expire_all()
    assert db.session.get(Competition, competition.id).status == "SETTLED"
    assert (reload(trade.id).result, reload(trade.id).exit_price) == ("WIN", D("1.09990"))
    w = account(competition.id, winner)
    assert (w.cash, w.final_equity, w.final_rank, w.prize) == (D("1032.00"), D("1032.00"), 1, D("10.00"))
    assert account(competition.id, other).final_rank is None  # no trade, no prize
    assert_books_balance(ctx)


def test_min_trading_days_counts_the_utc_days_of_a_rise_fall_competitions_trades(ctx):
    from edutradex.competitions import rules

    busy, idle = trader(), trader()
    competition = live_rise_fall([busy, idle], min_trading_days="2", end_at=utcnow() + timedelta(days=3))
    first = trade_in(competition.id, busy)
    second = trade_in(competition.id, busy)
    assert rules.trading_days(competition) == {account(competition.id, busy).id: 1}
    db.session.execute(update(Trade).where(Trade.id == second.id)  # placed a day later
                       .values(entry_ts_ms=first.entry_ts_ms + rules.DAY_MS))
    db.session.commit()
    assert rules.trading_days(competition) == {account(competition.id, busy).id: 2}
    assert rules.judge_trading_days(competition) == [account(competition.id, idle).id]
