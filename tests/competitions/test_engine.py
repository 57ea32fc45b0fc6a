"""The CFD engine on recorded ticks: pending orders, SL/TP on the right side's price, gaps,
stop-out ordering, negative-balance protection, exactly once against a manual close, replay
after a restart, intake (notices, reconcile), and the competition end / rebuy closers."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, insert, select, update

from edutradex.competitions import engine as engine_module
from edutradex.competitions import lifecycle, positions, service
from edutradex.competitions.engine import CfdEngine
from edutradex.competitions.models import (
    CfdEngineState,
    CfdFill,
    CfdOrder,
    CfdPosition,
    Competition,
    Participant,
)
from edutradex.extensions import db
from edutradex.market import quotes, store
from edutradex.market.models import Tick
from edutradex.types import utcnow
from edutradex.wallet.models import LedgerEntry
from tests.competitions.cfd import account, join, live_account
from tests.competitions.test_lifecycle import move_times
from tests.support.quotes import fresh_quotes  # noqa: F401 - autouse: no quote outlives a test

D = Decimal
EUR = "OTC_EUR_USD"
JPY = "OTC_USD_JPY"
_keys = itertools.count(1)


class Ticks:
    """Records ticks in the tick store as the feed does (ids from the same reservation),
    each a little later than the one before."""

    def __init__(self):
        self.ts_ms = quotes.now_ms() + 1000

    def __call__(self, symbol: str, bid: str, ask: str, *, ts_ms: int | None = None) -> store.TickRow:
        self.ts_ms = ts_ms if ts_ms is not None else self.ts_ms + 100
        bid_d, ask_d = D(bid), D(ask)
        row = store.TickRow(store.reserve_tick_ids(1)[0], symbol, self.ts_ms, bid_d, ask_d, (bid_d + ask_d) / 2,
                            "TEST")
        with db.engine.begin() as conn:
            conn.execute(insert(Tick), [row.as_params()])
        return row


@pytest.fixture
def record():
    return Ticks()


def started(app) -> CfdEngine:
    """A fresh engine (as after a restart), the app's own: notices reach it."""
    engine = app.extensions["cfd_engine"] = CfdEngine(app)
    engine.start()
    return engine


def open_position(participant_id: int, row: store.TickRow, lots: str, *, side: str = "BUY", leverage: int = 100,
                  stop_loss: str | None = None, take_profit: str | None = None, symbol: str | None = None) -> int:
    """A market order's position, opened at a recorded tick (as the web does), committed."""
    participant = positions.lock_account(participant_id)
    position = positions.open_position(
        participant, symbol=symbol or row.symbol, side=side, lots=D(lots), leverage=leverage,
        at=positions.At.of_tick(row), rule="market", reason="MARKET", order=None,
        stop_loss=D(stop_loss) if stop_loss else None, take_profit=D(take_profit) if take_profit else None)
    db.session.commit()
    return position.id


def pending_order(competition_id: int, participant_id: int, *, side: str, order_type: str, price: str,
                  lots: str = "1", symbol: str = EUR, expires_at=None, stop_loss: str | None = None) -> int:
    """A PENDING limit / stop order as the web writes it (committed, no notice)."""
    user_id = db.session.get(Participant, participant_id).user_id
    order = CfdOrder(competition_id=competition_id, participant_id=participant_id, user_id=user_id,
                     client_key=f"k{next(_keys)}", symbol=symbol, side=side, order_type=order_type, lots=D(lots),
                     price=D(price), leverage=100, status="PENDING", expires_at=expires_at,
                     stop_loss=D(stop_loss) if stop_loss else None, created_at=utcnow() - timedelta(seconds=1))
    db.session.add(order)
    db.session.commit()
    return order.id


def position(position_id: int) -> CfdPosition:
    db.session.expire_all()
    return db.session.get(CfdPosition, position_id)


def close_fills(position_id: int) -> list[CfdFill]:
    db.session.expire_all()
    return list(db.session.scalars(select(CfdFill).where(CfdFill.position_id == position_id,
                                                         CfdFill.action == "CLOSE").order_by(CfdFill.id)))


def watermark(symbol: str) -> int | None:
    db.session.expire_all()
    return db.session.scalar(select(CfdEngineState.last_tick_id).where(CfdEngineState.symbol == symbol))


# ---- pending orders -------------------------------------------------------------------------------

def test_a_sell_stop_the_market_gaps_through_fills_at_the_first_tick_after_the_gap_at_its_bid(app, record):
    with app.app_context():
        competition_id, participant_id, _ = live_account()
        record(EUR, "1.08500", "1.08520")
        order_id = pending_order(competition_id, participant_id, side="SELL", order_type="STOP", price="1.08000")
        engine = started(app)
        above = record(EUR, "1.08100", "1.08120")  # above the stop: nothing
        gap = record(EUR, "1.07500", "1.07520")  # the market gaps through 1.08000
        after = record(EUR, "1.07000", "1.07020")
        engine([above, gap, after])
        order = db.session.get(CfdOrder, order_id)
        assert order.status == "FILLED"
        opened = position(order.position_id)
        assert opened.side == "SELL" and opened.open_price == D("1.07500")  # the gap tick's bid, not 1.08000
        fill = db.session.scalars(select(CfdFill).where(CfdFill.order_id == order_id)).one()
        assert (fill.tick_id, fill.bid, fill.ask, fill.price) == (gap.id, D("1.07500"), D("1.07520"), D("1.07500"))
        assert "sell stop: bid 1.07500 <= stop 1.08000" in fill.rule
        assert watermark(EUR) == gap.id  # written with the fill's tick done


def test_a_buy_limit_fills_at_the_limit_or_better_and_good_till_date_orders_expire(app, record):
    with app.app_context():
        competition_id, participant_id, _ = live_account()
        record(EUR, "1.08500", "1.08520")
        limit_id = pending_order(competition_id, participant_id, side="BUY", order_type="LIMIT", price="1.08300")
        late_id = pending_order(competition_id, participant_id, side="BUY", order_type="LIMIT", price="1.08300",
                                expires_at=utcnow() - timedelta(milliseconds=1))
        engine = started(app)
        # the reconcile at start expired the good-till-date order whose date has passed
        assert db.session.get(CfdOrder, late_id).status == "EXPIRED"
        engine([record(EUR, "1.08310", "1.08330"), record(EUR, "1.08200", "1.08220")])
        order = db.session.get(CfdOrder, limit_id)
        assert order.status == "FILLED" and position(order.position_id).open_price == D("1.08220")  # ask < limit
        assert db.session.get(CfdOrder, late_id).status == "EXPIRED"


# ---- SL / TP ---------------------------------------------------------------------------------------

def test_a_longs_stop_loss_fires_on_the_bid_and_closes_at_the_bid(app, record, frames):
    with app.app_context():
        _, participant_id, user_id = live_account()
        opened_at = record(EUR, "1.10000", "1.10020")
        long_id = open_position(participant_id, opened_at, "1", stop_loss="1.09500", take_profit="1.11000")
        engine = started(app)
        above = record(EUR, "1.09600", "1.09620")
        mid_above = record(EUR, "1.09490", "1.09530")  # mid 1.09510 is above the SL; the bid is not
        engine([above, mid_above])
        closed = position(long_id)
        assert (closed.status, closed.close_reason, closed.close_price) == ("CLOSED", "STOP_LOSS", D("1.09490"))
        [fill] = close_fills(long_id)
        assert fill.tick_id == mid_above.id and fill.rule == "long stop-loss: bid 1.09490 <= 1.09500"
        assert account(participant_id).cash == D("10000.00") + (D("1.09490") - D("1.10020")) * 100_000
        assert ("sl", long_id) not in engine.triggers and ("tp", long_id) not in engine.triggers
        assert [(u, p["event"]) for u, p in frames] == [(user_id, "position_closed")]
        assert frames[0][1]["changed"] and frames[0][1]["figures"]["balance"] == 9470.0


def test_a_shorts_stop_loss_fires_on_the_ask_and_a_longs_take_profit_only_on_the_bid(app, record):
    with app.app_context():
        _, participant_id, _ = live_account()
        opened_at = record(EUR, "1.10000", "1.10020")
        short_id = open_position(participant_id, opened_at, "1", side="SELL", stop_loss="1.10500")
        long_id = open_position(participant_id, opened_at, "1", take_profit="1.10400")
        engine = started(app)
        ask_only = record(EUR, "1.10380", "1.10420")  # ask above the long's TP, bid not: no TP
        crossing = record(EUR, "1.10460", "1.10510")  # the short's SL on the ask (mid 1.10485 below it); long TP
        engine([ask_only])
        assert position(long_id).status == "OPEN" and position(short_id).status == "OPEN"
        engine([crossing])
        short, long = position(short_id), position(long_id)
        assert (short.close_reason, short.close_price) == ("STOP_LOSS", D("1.10510"))  # the ask
        assert (long.close_reason, long.close_price) == ("TAKE_PROFIT", D("1.10460"))  # the bid
        assert close_fills(short_id)[0].tick_id == close_fills(long_id)[0].tick_id == crossing.id


def test_a_moved_stop_loss_counts_as_the_database_has_it(app, record):
    with app.app_context():
        _, participant_id, _ = live_account()
        opened_at = record(EUR, "1.10000", "1.10020")
        long_id = open_position(participant_id, opened_at, "1", stop_loss="1.09500")
        engine = started(app)
        # the trader moves the SL down; the notice is lost: the book still has 1.09500
        db.session.execute(update(CfdPosition).where(CfdPosition.id == long_id)
                           .values(stop_loss=D("1.09000"), version=CfdPosition.version + 1))
        db.session.commit()
        engine([record(EUR, "1.09400", "1.09420")])
        assert position(long_id).status == "OPEN"  # 1.09400 > the real SL 1.09000
        engine([record(EUR, "1.08990", "1.09010")])
        assert (position(long_id).close_reason, position(long_id).close_price) == ("STOP_LOSS", D("1.08990"))


# ---- stop-out and negative balance --------------------------------------------------------------

def test_stop_out_closes_the_largest_loss_first_at_the_crossing_tick_until_above_the_level(app, record, frames):
    with app.app_context():
        _, participant_id, user_id = live_account()
        opened_at = record(EUR, "1.09980", "1.10000")
        small = open_position(participant_id, opened_at, "1", leverage=100)  # margin 1,100
        largest = open_position(participant_id, opened_at, "3", leverage=500)  # margin 660
        middle = open_position(participant_id, opened_at, "2", leverage=100)  # margin 2,200
        engine = started(app)
        warning = record(EUR, "1.09000", "1.09020")  # losses 1,000/3,000/2,000: equity 4,000, level 101 %
        engine([warning])
        warning = record(EUR, "1.08900", "1.08920")  # equity 3,400 / used 3,960: 85.9 %, margin call
        engine([warning])
        engine([record(EUR, "1.08880", "1.08900")])  # still in the zone: warned once
        assert [p["event"] for _, p in frames] == ["margin_call"] and frames[0][0] == user_id
        warned = frames[0][1]
        assert warned["margin_call"] and warned["message"].startswith("Margin call: your margin level is below 100")
        assert warned["figures"]["margin_level"] == pytest.approx(85.86, abs=0.01)
        assert warned["figures"]["balance"] == 10000 and warned["figures"]["used_margin"] == 3960
        crossing = record(EUR, "1.08600", "1.08620")  # equity 1,600 / 3,960 = 40.4 % < 50 %
        engine([crossing])
        # largest loss (4,200) first: 1,600 / 3,300 = 48.5 %, still below; then 2,800: 1,600 / 1,100 = 145 %
        fills = list(db.session.scalars(select(CfdFill).where(CfdFill.action == "CLOSE").order_by(CfdFill.id)))
        assert [f.position_id for f in fills] == [largest, middle]
        assert {f.tick_id for f in fills} == {crossing.id} and {f.reason for f in fills} == {"STOP_OUT"}
        assert [f.realized_pnl for f in fills] == [D("-4200.00"), D("-2800.00")]
        assert fills[0].rule.startswith(f"stop-out: margin level 40.40% < 50.00% at tick {crossing.id}")
        assert position(small).status == "OPEN"
        participant = account(participant_id)
        assert participant.cash == D("3000.00") and participant.used_margin == D("1100.00")
        assert frames[-1][1]["event"] == "stop_out" and frames[-1][1]["positions"] == [largest, middle]


def test_a_gap_below_zero_equity_closes_everything_and_leaves_the_account_at_zero(app, record):
    with app.app_context():
        _, participant_id, _ = live_account()
        opened_at = record(EUR, "1.09980", "1.10000")
        gold_at = record("OTC_GOLD", "2000.00", "2000.50")
        first = open_position(participant_id, opened_at, "5", leverage=500)
        second = open_position(participant_id, gold_at, "0.1", leverage=100)
        ledger_before = db.session.scalar(select(func.count(LedgerEntry.id)))
        engine = started(app)
        gap = record(EUR, "1.07000", "1.07020")  # -15,000 on the EUR long: equity far below 0
        engine([gap])
        for position_id in (first, second):
            assert position(position_id).status == "CLOSED"
            assert position(position_id).close_reason == "NEGATIVE_BALANCE"
        assert close_fills(first)[0].tick_id == gap.id and close_fills(first)[0].price == D("1.07000")
        assert close_fills(second)[0].tick_id == gold_at.id  # gold at its latest recorded tick
        participant = account(participant_id)
        assert (participant.cash, participant.equity, participant.used_margin) == (D("0.00"), D("0.00"), D("0.00"))
        assert db.session.scalar(select(func.count(LedgerEntry.id))) == ledger_before  # nothing in the wallet
        assert participant_id not in engine.risk


# ---- exactly once, restart, intake ---------------------------------------------------------------

def test_a_manual_close_before_the_stop_loss_tick_closes_once(db_app, record):
    with db_app.app_context():
        _, participant_id, _ = live_account()
        opened_at = record(EUR, "1.10000", "1.10020")
        long_id = open_position(participant_id, opened_at, "1", stop_loss="1.09500")
        engine = started(db_app)
        manual_at = record(EUR, "1.09600", "1.09620")
        positions.close_position(long_id, at=positions.At.of_tick(manual_at), reason="MANUAL", rule="manual")
        db.session.commit()  # no notice: the engine's book still holds the SL
        engine([manual_at, record(EUR, "1.09400", "1.09420")])
        assert [f.reason for f in close_fills(long_id)] == ["MANUAL"]
        assert account(participant_id).cash == D("9580.00")  # (1.09600 - 1.10020) x 100,000


@pytest.mark.postgres
def test_a_manual_close_racing_the_stop_loss_closes_once(pg_app, record):
    """The trader's close and the engine's SL in two threads at once, on PostgreSQL."""
    with pg_app.app_context():
        _, participant_id, _ = live_account()
        opened_at = record(EUR, "1.10000", "1.10020")
        ids = [open_position(participant_id, opened_at, "0.1", stop_loss="1.09500") for _ in range(6)]
        engine = started(pg_app)
        crossing = record(EUR, "1.09400", "1.09420")
    barrier = threading.Barrier(2)

    def manual():
        with pg_app.app_context():
            barrier.wait()
            for position_id in ids:
                positions.close_position(position_id, at=positions.At.of_tick(crossing), reason="MANUAL",
                                         rule="manual")
                db.session.commit()
            db.session.remove()

    def engine_pass():
        with pg_app.app_context():
            barrier.wait()
            engine([crossing])
            db.session.remove()

    threads = [threading.Thread(target=manual), threading.Thread(target=engine_pass)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    with pg_app.app_context():
        for position_id in ids:
            assert len(close_fills(position_id)) == 1
        # each 0.1 lot lost 62 (bid 1.09400 vs ask 1.10020) whoever closed it, once
        assert account(participant_id).cash == D("10000.00") - 6 * D("62.00")
        assert account(participant_id).used_margin == D("0.00")


def test_after_a_restart_a_stop_crossed_while_down_closes_once_at_the_recorded_crossing_tick(app, record):
    with app.app_context():
        _, participant_id, _ = live_account()
        opened_at = record(EUR, "1.10000", "1.10020")
        long_id = open_position(participant_id, opened_at, "1", stop_loss="1.09500")
        first = started(app)
        seen = record(EUR, "1.09900", "1.09920")
        first([seen])
        first.save_watermarks()
        assert watermark(EUR) == seen.id
        # the engine is down (not stopped cleanly): the feed records ticks that cross the SL
        record(EUR, "1.09700", "1.09720")
        crossing = record(EUR, "1.09450", "1.09470")
        record(EUR, "1.09000", "1.09020")
        record(EUR, "1.09800", "1.09820")  # the restart price: back above the SL
        restarted = started(app)
        closed = position(long_id)
        assert (closed.status, closed.close_price) == ("CLOSED", D("1.09450"))
        assert [f.tick_id for f in close_fills(long_id)] == [crossing.id]
        assert restarted.fills == 1
        started(app)  # and once more: nothing twice
        assert len(close_fills(long_id)) == 1


def test_a_replay_never_fills_an_order_on_a_tick_from_before_it_was_placed(app, record):
    with app.app_context():
        competition_id, participant_id, _ = live_account()
        record(EUR, "1.08500", "1.08520")
        started(app).save_watermarks()
        early = record(EUR, "1.08000", "1.08020", ts_ms=quotes.now_ms() - 60_000)  # a minute before the order
        order_id = pending_order(competition_id, participant_id, side="BUY", order_type="LIMIT", price="1.08100")
        started(app)
        assert db.session.get(CfdOrder, order_id).status == "PENDING"
        assert early.id <= watermark(EUR)  # replayed, and passed over for this order


def test_a_pending_order_inserted_without_a_notice_fills_after_a_reconcile(app, record):
    with app.app_context():
        competition_id, participant_id, _ = live_account()
        record(EUR, "1.08500", "1.08520")
        seconds = [1000.0]
        engine = app.extensions["cfd_engine"] = CfdEngine(app, monotonic=lambda: seconds[0])
        engine.start()
        order_id = pending_order(competition_id, participant_id, side="BUY", order_type="STOP", price="1.08600")
        engine([record(EUR, "1.08610", "1.08630")])  # crosses, but the engine has not heard of the order
        assert db.session.get(CfdOrder, order_id).status == "PENDING"
        seconds[0] += app.config["CFD_RECONCILE_SECONDS"]  # the next pass reconciles
        engine([])
        crossing = record(EUR, "1.08640", "1.08660")
        engine([crossing])
        db.session.expire_all()
        order = db.session.get(CfdOrder, order_id)
        assert order.status == "FILLED" and position(order.position_id).open_tick_id == crossing.id


def test_a_notice_puts_a_new_order_in_the_book_before_the_next_ticks(app, record):
    with app.app_context():
        competition_id, participant_id, _ = live_account()
        record(EUR, "1.08500", "1.08520")
        engine = started(app)
        order_id = pending_order(competition_id, participant_id, side="SELL", order_type="LIMIT", price="1.08600")
        for listener in app.extensions["cfd_listeners"]:  # what orders.py calls after its commit
            listener("order", order_id)
        crossing = record(EUR, "1.08610", "1.08630")
        engine([crossing])
        order = db.session.get(CfdOrder, order_id)
        assert order.status == "FILLED" and position(order.position_id).open_price == D("1.08610")


def test_notices_reach_the_feed_process_over_redis(tmp_path, redis_url, record):
    from tests.conftest import build_app

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    web = build_app(url, REDIS_URL=redis_url)
    feed = build_app(url, REDIS_URL=redis_url, CFD_RECONCILE_SECONDS=3600)
    with feed.app_context():
        competition_id, participant_id, _ = live_account()
        record(EUR, "1.08500", "1.08520")
        engine = started(feed)
    with web.app_context():
        assert not web.extensions["cfd_engine"].active  # the web process runs no engine
        order_id = pending_order(competition_id, participant_id, side="BUY", order_type="STOP", price="1.08600")
        engine_module.notify("order", order_id)
    with feed.app_context():
        deadline = time.monotonic() + 5
        while ("order", order_id) not in engine.triggers and time.monotonic() < deadline:
            engine([])  # each pass reads the notices waiting, without blocking
        assert ("order", order_id) in engine.triggers
        engine([record(EUR, "1.08610", "1.08630")])
        assert db.session.get(CfdOrder, order_id).status == "FILLED"
        engine.stop()
    for app in (web, feed):
        with app.app_context():
            db.engine.dispose()


def test_equity_of_the_accounts_at_risk_is_written_for_the_standings(app, record):
    with app.app_context():
        _, participant_id, _ = live_account()
        opened_at = record(EUR, "1.10000", "1.10020")
        open_position(participant_id, opened_at, "1")
        engine = started(app)
        engine([record(EUR, "1.10500", "1.10520")])
        assert account(participant_id).equity == D("10480.00")  # cash + (1.10500 - 1.10020) x 100,000


def test_the_engine_ranks_its_accounts_on_the_leaderboard_as_it_values_them(app, record):
    from edutradex.competitions import leaderboard

    with app.app_context():
        competition_id, participant_id, _ = live_account()
        opened_at = record(EUR, "1.10000", "1.10020")
        open_position(participant_id, opened_at, "1")
        engine = started(app)
        engine([record(EUR, "1.10500", "1.10520")])  # housekeeping: equity noted, then the board published
        rank, entry = leaderboard.rank_of(competition_id, participant_id)
        assert (rank, entry.equity) == (1, D("10480.00"))
        assert leaderboard.frame(competition_id)["rows"][0]["equity"] == "10480.00"


def test_orders_and_positions_of_a_competition_that_is_not_live_are_ignored(app, record):
    with app.app_context():
        competition_id, participant_id, _ = live_account()
        opened_at = record(EUR, "1.10000", "1.10020")
        long_id = open_position(participant_id, opened_at, "1", stop_loss="1.09500")
        db.session.execute(update(Competition).where(Competition.id == competition_id).values(status="ENDED"))
        db.session.commit()
        engine = started(app)
        assert len(engine.triggers) == 0 and len(engine.risk) == 0
        engine([record(EUR, "1.09000", "1.09020")])
        assert position(long_id).status == "OPEN"


# ---- the end of the competition and rebuys --------------------------------------------------------

def test_the_end_closes_every_position_at_the_tick_at_or_before_end_at(app, record):
    with app.app_context():
        competition_id, participant_id, _ = live_account()
        other_id, _ = join(competition_id)
        start = utcnow() - timedelta(minutes=10)
        end = utcnow() - timedelta(seconds=5)
        end_ms = int(end.timestamp() * 1000)
        opened_at = record(EUR, "1.10000", "1.10020", ts_ms=end_ms - 60_000)
        long_id = open_position(participant_id, opened_at, "1")
        short_id = open_position(other_id, opened_at, "1", side="SELL")
        order_id = pending_order(competition_id, participant_id, side="BUY", order_type="LIMIT", price="1.05000")
        move_times(competition_id, start=start, end=end)
        engine = started(app)
        at_end = record(EUR, "1.10300", "1.10320", ts_ms=end_ms - 1)
        late = record(EUR, "1.20000", "1.20020", ts_ms=end_ms + 2000)  # after the end: the "job runs" price
        engine([at_end, late])  # the short would be far below 0 at `late`: the engine leaves ticks after the end alone
        assert position(short_id).status == "OPEN"
        assert lifecycle.end_competition(competition_id)
        long, short = position(long_id), position(short_id)
        assert (long.close_reason, long.close_price) == ("COMPETITION_END", D("1.10300"))  # the bid
        assert (short.close_reason, short.close_price) == ("COMPETITION_END", D("1.10320"))  # the ask
        assert {f.tick_id for f in close_fills(long_id) + close_fills(short_id)} == {at_end.id}
        assert db.session.get(CfdOrder, order_id).status == "CANCELLED"
        winner, loser = account(participant_id), account(other_id)
        assert (winner.cash, winner.equity, winner.final_equity) == (D("10280.00"),) * 3
        assert (loser.cash, loser.equity) == (D("9680.00"),) * 2
        engine([])  # the notice: the engine forgets the competition
        assert len(engine.triggers) == 0 and len(engine.risk) == 0


def test_a_rebuy_closes_the_positions_at_the_latest_recorded_prices_and_cancels_the_orders(app, record):
    with app.app_context():
        competition_id, participant_id, user_id = live_account(rebuys_allowed=True, max_rebuys=1,
                                                               rebuy_fee="5.00")
        opened_at = record(EUR, "1.10000", "1.10020")
        long_id = open_position(participant_id, opened_at, "1")
        order_id = pending_order(competition_id, participant_id, side="BUY", order_type="LIMIT", price="1.05000")
        latest = record(EUR, "1.09000", "1.09020")
        db.session.execute(update(Participant).where(Participant.id == participant_id).values(equity=D("8980.00")))
        db.session.commit()
        service.rebuy(competition_id, user_id)
        closed = position(long_id)
        assert (closed.close_reason, closed.close_price) == ("REBUY", D("1.09000"))
        assert close_fills(long_id)[0].tick_id == latest.id
        assert db.session.get(CfdOrder, order_id).status == "CANCELLED"
        participant = account(participant_id)
        assert (participant.cash, participant.used_margin, participant.rebuys) == (D("10000.00"), D("0.00"), 1)


def test_orders_placed_and_changed_on_the_web_reach_the_engine_by_their_notices(app, record):
    """orders.py (the web) -> cfd_listeners -> the engine's book, with no reconcile."""
    from edutradex.competitions import orders
    from tests.competitions.cfd import quote

    with app.app_context():
        competition_id, participant_id, user_id = live_account()
        slug = db.session.get(Competition, competition_id).slug
        seconds = [1000.0]
        engine = app.extensions["cfd_engine"] = CfdEngine(app, monotonic=lambda: seconds[0])
        engine.start()
        latest = record(EUR, "1.08500", "1.08510")
        quote(EUR, "1.08500", "1.08510", tick_id=latest.id)

        def form(**fields) -> dict:
            return {"client_key": f"engine-key-{next(_keys):06d}", "symbol": EUR, "lots": "0.10", **fields}

        bought = orders.place_order(slug, user_id, form(side="BUY", order_type="MARKET", stop_loss="1.08000"))
        limit = orders.place_order(slug, user_id, form(side="SELL", order_type="LIMIT", price="1.08700"))
        orders.modify_position(user_id, bought.position_id, {"stop_loss": "1.08300"})  # moved up
        engine([])
        assert engine.triggers.get(("sl", bought.position_id)).level == D("1.08300")
        assert ("order", limit.id) in engine.triggers
        engine([record(EUR, "1.08710", "1.08720")])  # the sell limit fills at the bid, better than 1.08700
        filled = db.session.get(CfdOrder, limit.id)
        assert filled.status == "FILLED" and position(filled.position_id).open_price == D("1.08710")
        engine([record(EUR, "1.08290", "1.08300")])  # the moved SL, on the bid
        assert (position(bought.position_id).close_reason, position(bought.position_id).close_price) == (
            "STOP_LOSS", D("1.08290"))


def test_a_database_failure_at_the_crossing_tick_fills_at_that_tick_once_the_database_is_back(app, record,
                                                                                               monkeypatch):
    with app.app_context():
        _, participant_id, _ = live_account()
        opened_at = record(EUR, "1.10000", "1.10020")
        long_id = open_position(participant_id, opened_at, "1", stop_loss="1.09500")
        engine = started(app)
        real_close = positions.close_position
        outage = [True]

        def close_position(*args, **kwargs):
            if outage[0]:
                raise RuntimeError("database unavailable")
            return real_close(*args, **kwargs)

        monkeypatch.setattr(positions, "close_position", close_position)
        crossing = record(EUR, "1.09400", "1.09420")
        lower = record(EUR, "1.09000", "1.09020")
        engine([crossing, lower])
        assert position(long_id).status == "OPEN" and engine.behind
        assert (watermark(EUR) or 0) < crossing.id  # stopped before the tick it could not finish
        outage[0] = False
        engine([record(EUR, "1.08000", "1.08020")])  # the next pass catches up from the tick store first
        closed = position(long_id)
        assert (closed.close_price, [f.tick_id for f in close_fills(long_id)]) == (D("1.09400"), [crossing.id])
        assert not engine.behind


def test_a_start_that_fails_is_retried_and_replays_what_came_meanwhile(app, record, monkeypatch):
    with app.app_context():
        _, participant_id, _ = live_account()
        opened_at = record(EUR, "1.10000", "1.10020")
        long_id = open_position(participant_id, opened_at, "1", stop_loss="1.09500")
        started(app).save_watermarks()
        seconds = [100.0]
        engine = app.extensions["cfd_engine"] = CfdEngine(app, monotonic=lambda: seconds[0])
        real_sync = engine._sync
        monkeypatch.setattr(engine, "_sync", lambda **kw: (_ for _ in ()).throw(RuntimeError("database down")))
        engine.on_authority(True)  # the feed took the authority; the rebuild fails
        assert not engine.active
        crossing = record(EUR, "1.09400", "1.09420")
        engine([crossing])  # too early to retry: nothing processed, nothing skipped
        monkeypatch.setattr(engine, "_sync", real_sync)
        seconds[0] += engine_module.START_RETRY_S
        engine([record(EUR, "1.09800", "1.09820")])
        assert engine.active
        assert [f.tick_id for f in close_fills(long_id)] == [crossing.id]


def test_a_good_till_date_order_crossed_after_its_date_expires_instead_of_filling(app, record):
    with app.app_context():
        competition_id, participant_id, _ = live_account()
        record(EUR, "1.08500", "1.08520")
        expires = utcnow() + timedelta(seconds=30)
        order_id = pending_order(competition_id, participant_id, side="BUY", order_type="STOP", price="1.08600",
                                 expires_at=expires)
        engine = started(app)
        assert ("order", order_id) in engine.triggers  # not expired by the clock yet
        late = record(EUR, "1.08610", "1.08630", ts_ms=int(expires.timestamp() * 1000) + 1)
        engine([late])
        order = db.session.get(CfdOrder, order_id)
        assert (order.status, order.position_id) == ("EXPIRED", None)
        assert ("order", order_id) not in engine.triggers


def test_the_end_leaves_an_account_its_closes_take_below_zero_at_zero(app, record):
    with app.app_context():
        competition_id, participant_id, _ = live_account()
        end = utcnow() - timedelta(seconds=5)
        end_ms = int(end.timestamp() * 1000)
        opened_at = record(EUR, "1.10000", "1.10020", ts_ms=end_ms - 60_000)
        long_id = open_position(participant_id, opened_at, "5", leverage=500)
        # the end tick gaps far down; no engine ran in between (it would have closed at the gap)
        record(EUR, "1.07000", "1.07020", ts_ms=end_ms - 1)
        move_times(competition_id, start=end - timedelta(minutes=10), end=end)
        ledger_before = db.session.scalar(select(func.count(LedgerEntry.id)))
        assert lifecycle.end_competition(competition_id)
        assert position(long_id).close_price == D("1.07000")
        participant = account(participant_id)
        assert (participant.cash, participant.equity, participant.final_equity) == (D("0.00"),) * 3
        assert db.session.scalar(select(func.count(LedgerEntry.id))) == ledger_before


def test_the_feed_runs_the_engine_on_the_ticks_it_records(app, record):
    """The real wiring: the app's engine is a tick listener of the price feed; it starts when
    the feed takes the authority and fills on the feed's own recorded ticks."""
    from edutradex.market.feed import PriceFeed

    with app.app_context():
        _, participant_id, _ = live_account()
        opened_at = record(EUR, "1.10000", "1.10020", ts_ms=quotes.now_ms() - 1000)
        # a stop-loss above the bid: the feed's first tick after the open crosses it
        long_id = open_position(participant_id, opened_at, "1", stop_loss="1.50000")
        db.session.remove()
    app.config.update(FEED_TICK_INTERVAL_MS=50, TICK_FLUSH_INTERVAL_MS=100)
    PriceFeed(app, seed=3, emit=lambda symbol, frame: None, emit_board=None, adapters=False).run(seconds=1.5)
    with app.app_context():
        closed = position(long_id)
        assert (closed.status, closed.close_reason) == ("CLOSED", "STOP_LOSS")
        [fill] = close_fills(long_id)
        tick = db.session.get(Tick, fill.tick_id)
        assert tick is not None and tick.source == "SIM" and tick.id > opened_at.id  # the feed's own tick
        assert (fill.bid, fill.ask, closed.close_price) == (tick.bid, tick.ask, tick.bid)
        assert watermark(EUR) >= tick.id
        assert not app.extensions["cfd_engine"].active  # the feed stopped: the engine let go


def test_a_stop_loss_moved_without_a_notice_is_picked_up_by_the_reconcile(app, record):
    with app.app_context():
        _, participant_id, _ = live_account()
        opened_at = record(EUR, "1.10000", "1.10020")
        long_id = open_position(participant_id, opened_at, "1", stop_loss="1.09000")
        seconds = [1000.0]
        engine = app.extensions["cfd_engine"] = CfdEngine(app, monotonic=lambda: seconds[0])
        engine.start()
        # moved up (as orders.modify_position does: version + 1), the notice lost
        db.session.execute(update(CfdPosition).where(CfdPosition.id == long_id)
                           .values(stop_loss=D("1.09800"), version=CfdPosition.version + 1))
        db.session.commit()
        engine([record(EUR, "1.09700", "1.09720")])  # crosses the new SL; the book still has 1.09000
        assert position(long_id).status == "OPEN"
        seconds[0] += app.config["CFD_RECONCILE_SECONDS"]
        engine([])
        assert engine.triggers.get(("sl", long_id)).level == D("1.09800")
        crossing = record(EUR, "1.09750", "1.09770")
        engine([crossing])
        assert [f.tick_id for f in close_fills(long_id)] == [crossing.id]


def test_the_trader_sees_the_engines_close_on_their_own_socket_room_only(app, client, auth, record):
    from edutradex.auth.models import User
    from edutradex.extensions import socketio

    auth.register()
    with app.app_context():
        competition_id, _, _ = live_account()
        joe = db.session.scalar(select(User.id).where(User.email == "joe@example.com"))
        participant = Participant(competition_id=competition_id, user_id=joe, cash=D("10000.00"),
                                  equity=D("10000.00"))
        db.session.add(participant)
        db.session.commit()
        participant_id = participant.id
    joes_socket = socketio.test_client(app, flask_test_client=client)
    someone = socketio.test_client(app)
    with app.app_context():
        opened_at = record(EUR, "1.10000", "1.10020")
        long_id = open_position(participant_id, opened_at, "1", stop_loss="1.09500")
        engine = started(app)
        engine([record(EUR, "1.09400", "1.09420")])
    frames = [m["args"][0] for m in joes_socket.get_received() if m["name"] == "cfd_account"]
    assert [(f["event"], f["position_id"], f["reason"]) for f in frames] == [("position_closed", long_id, "STOP_LOSS")]
    assert frames[0]["figures"]["balance"] == 9380.0 and frames[0]["changed"]
    assert not [m for m in someone.get_received() if m["name"] == "cfd_account"]


def test_a_usd_jpy_stop_out_values_the_profit_in_usd_at_the_crossing_tick(app, record):
    from edutradex.competitions import margin

    with app.app_context():
        _, participant_id, _ = live_account()
        opened_at = record(JPY, "150.000", "150.020")
        long_id = open_position(participant_id, opened_at, "5", leverage=500)  # margin 500,000 / 500 = 1,000 USD
        engine = started(app)
        engine([record(JPY, "148.000", "148.020")])  # -6,824.32 USD: equity 3,175.68, level 317 %
        assert position(long_id).status == "OPEN"
        crossing = record(JPY, "147.180", "147.200")  # -1,420,000 JPY / 147.18 = -9,648.05 USD: level 35 %
        engine([crossing])
        closed = position(long_id)
        assert (closed.close_reason, closed.close_price) == ("STOP_OUT", D("147.180"))
        [fill] = close_fills(long_id)
        assert fill.tick_id == crossing.id and fill.usd_rate == D("147.180")
        assert fill.realized_pnl == margin.profit_usd("BUY", D("150.020"), D("147.180"), D("5"), D("100000"),
                                                      D("147.180")) == D("-9648.05")
        assert account(participant_id).cash == D("351.95")


def test_a_triggered_order_without_the_margin_then_is_rejected_and_the_trader_told(app, record, frames):
    with app.app_context():
        competition_id, participant_id, user_id = live_account()
        record(EUR, "1.08500", "1.08520")
        order_id = pending_order(competition_id, participant_id, side="BUY", order_type="STOP", price="1.08600",
                                 lots="50")  # 50 lots x 100,000 x 1.086 / 100 = 54,300 USD of margin
        engine = started(app)
        engine([record(EUR, "1.08610", "1.08630")])
        order = db.session.get(CfdOrder, order_id)
        assert (order.status, order.position_id) == ("REJECTED", None)
        assert "Not enough free margin" in order.status_reason
        assert [(u, p["event"], p["order_id"]) for u, p in frames] == [(user_id, "order_rejected", order_id)]
        assert frames[0][1]["reason"] == order.status_reason and frames[0][1]["changed"]
        assert ("order", order_id) not in engine.triggers


def test_notices_arriving_while_the_engine_syncs_wait_for_the_next_pass(app, record, monkeypatch):
    """The web keeps placing while the engine reads the database for the notices it took:
    those new notices are the next pass's. Taking them in the same pass, one sync each,
    held the feed in take_notices for as long as the orders kept coming (no tick made, every
    quote stale, every order refused 'Prices are updating')."""
    with app.app_context():
        competition_id, participant_id, _ = live_account()
        record(EUR, "1.08500", "1.08520")
        engine = started(app)
        orders = [pending_order(competition_id, participant_id, side="SELL", order_type="LIMIT", price=f"1.0{860 + n}")
                  for n in range(3)]
        synced: list[dict] = []
        real_sync = engine._sync

        def sync_while_the_web_places(**scopes):
            synced.append(scopes)
            for n in range(100 if len(synced) < 5 else 0):  # meanwhile, other requests commit and notify
                engine.notice("order", 10_000 + len(synced) * 100 + n)
            real_sync(**scopes)

        monkeypatch.setattr(engine, "_sync", sync_while_the_web_places)
        for order_id in orders:
            engine.notice("order", order_id)
        engine.notice("position", 999_999)
        engine.take_notices()
        assert synced == [{"order_ids": set(orders), "position_ids": {999_999}, "participant_ids": set()}]
        assert all(("order", order_id) in engine.triggers for order_id in orders)
        assert len(engine.notices) == 100  # the next pass's
