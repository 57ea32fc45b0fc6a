"""positions.py: opening and closing at a recorded tick, exactly once, with the margin and
the realised P&L on the account; pending order fills by the issue's rules."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from edutradex.competitions import positions
from edutradex.competitions.models import CfdFill, CfdOrder, CfdPosition, Competition
from edutradex.competitions.positions import At, InsufficientMargin
from edutradex.extensions import db
from tests.competitions.cfd import account, at, live_account, quote
from tests.support.concurrency import run_in_threads
from tests.support.quotes import fresh_quotes  # noqa: F401 - autouse: no quote outlives a test

D = Decimal


def buy(participant_id: int, lots: str = "1", symbol: str = "OTC_EUR_USD", side: str = "BUY",
        tick: At | None = None, leverage: int = 30) -> CfdPosition:
    tick = tick or at("1.08500", "1.08510")
    participant = positions.lock_account(participant_id)
    position = positions.open_position(participant, symbol=symbol, side=side, lots=D(lots), leverage=leverage,
                                       at=tick, rule="market buy at the ask", reason="MARKET", order=None)
    db.session.commit()
    return position


def fills(position_id: int) -> list[CfdFill]:
    return list(db.session.scalars(select(CfdFill).where(CfdFill.position_id == position_id).order_by(CfdFill.id)))


def test_a_market_buy_opens_at_the_ask_with_its_margin_and_proof(app):
    with app.app_context():
        _, pid, _ = live_account()
        position = buy(pid, tick=At(41, 1_700_000_000_123, D("1.08500"), D("1.08510")))
        db.session.expire_all()
        position = db.session.get(CfdPosition, position.id)
        assert (position.open_price, position.lots, position.margin, position.open_tick_id) == (
            D("1.08510"), D("1"), D("3617.00"), 41)  # 100,000 x 1.0851 / 30
        acc = account(pid)
        assert (acc.cash, acc.used_margin, acc.trades_count) == (D("10000.00"), D("3617.00"), 1)
        assert acc.equity == D("9990.00")  # valued at the bid: the spread, 1 pip x 100,000
        [fill] = fills(position.id)
        assert (fill.action, fill.side, fill.price, fill.tick_id, fill.tick_ts_ms, fill.bid, fill.ask, fill.rule) == (
            "OPEN", "BUY", D("1.08510"), 41, 1_700_000_000_123, D("1.08500"), D("1.08510"), "market buy at the ask")


def test_more_margin_than_free_is_refused_with_the_figures_and_nothing_written(app):
    with app.app_context():
        _, pid, _ = live_account()
        buy(pid, lots="2")  # 7,234.00 used
        quote("OTC_EUR_USD", "1.08500", "1.08510")
        with pytest.raises(InsufficientMargin) as refused:
            buy(pid, lots="1")
        db.session.rollback()
        assert (refused.value.required, refused.value.free) == (D("3617.00"), D("2746.00"))
        assert "3,617.00" in refused.value.message and "2,746.00" in refused.value.message
        assert refused.value.status_code == 409 and refused.value.field == "lots"
        acc = account(pid)
        assert (acc.used_margin, acc.trades_count) == (D("7234.00"), 1)
        assert db.session.scalar(select(func.count()).select_from(CfdPosition)) == 1


def test_a_full_close_realises_the_profit_at_the_bid_and_releases_the_margin(app):
    with app.app_context():
        _, pid, _ = live_account()
        position = buy(pid)
        fill = positions.close_position(position.id, at=at("1.08610", "1.08620", tick_id=42), reason="MANUAL",
                                        rule="close long at the bid")
        db.session.commit()
        assert (fill.action, fill.side, fill.price, fill.realized_pnl, fill.tick_id) == (
            "CLOSE", "SELL", D("1.08610"), D("100.00"), 42)
        acc = account(pid)
        assert (acc.cash, acc.equity, acc.used_margin) == (D("10100.00"), D("10100.00"), D("0.00"))
        position = db.session.get(CfdPosition, position.id)
        assert (position.status, position.lots, position.margin, position.close_price, position.close_reason,
                position.realized_pnl) == ("CLOSED", D("0"), D("0.00"), D("1.08610"), "MANUAL", D("100.00"))


def test_a_partial_close_releases_margin_pro_rata_and_realises_the_closed_lots_only(app):
    with app.app_context():
        _, pid, _ = live_account()
        position = buy(pid)
        fill = positions.close_position(position.id, at=at("1.08410", "1.08420"), reason="MANUAL", rule="partial",
                                        lots=D("0.4"))
        db.session.commit()
        assert (fill.lots, fill.realized_pnl) == (D("0.4"), D("-40.00"))  # -10 pips x 0.4 x 100,000
        position = db.session.get(CfdPosition, position.id)
        assert (position.status, position.lots, position.margin, position.realized_pnl) == (
            "OPEN", D("0.6"), D("2170.20"), D("-40.00"))
        acc = account(pid)
        assert (acc.cash, acc.used_margin) == (D("9960.00"), D("2170.20"))
        positions.close_position(position.id, at=at("1.08710", "1.08720"), reason="TAKE_PROFIT", rule="tp")
        db.session.commit()
        acc = account(pid)
        assert (acc.cash, acc.used_margin) == (D("10080.00"), D("0.00"))  # + 20 pips x 0.6 lots
        assert db.session.get(CfdPosition, position.id).realized_pnl == D("80.00")


def test_a_second_close_of_the_same_position_does_nothing(app):
    with app.app_context():
        _, pid, _ = live_account()
        position = buy(pid)
        assert positions.close_position(position.id, at=at("1.08610", "1.08620"), reason="MANUAL", rule="x")
        db.session.commit()
        assert positions.close_position(position.id, at=at("1.09610", "1.09620"), reason="STOP_LOSS", rule="y") is None
        # more lots than are left is no close either
        assert account(pid).cash == D("10100.00")
        assert len(fills(position.id)) == 2


def test_closing_more_lots_than_open_closes_nothing(app):
    with app.app_context():
        _, pid, _ = live_account()
        position = buy(pid, lots="0.5")
        assert positions.close_position(position.id, at=at("1.08610", "1.08620"), reason="MANUAL", rule="x",
                                        lots=D("0.6")) is None
        db.session.commit()
        assert db.session.get(CfdPosition, position.id).lots == D("0.5")
        assert account(pid).cash == D("10000.00")


def test_a_usd_jpy_short_converts_its_profit_at_the_closing_price(app):
    with app.app_context():
        _, pid, _ = live_account()
        position = buy(pid, symbol="OTC_USD_JPY", side="SELL", tick=at("149.500", "149.515"))
        assert position.margin == D("3333.33")  # 100,000 USD / 30
        fill = positions.close_position(position.id, at=at("148.985", "149.000"), reason="MANUAL", rule="x")
        db.session.commit()
        # 0.5 JPY x 100,000 = 50,000 JPY, / 149.000
        assert (fill.price, fill.usd_rate, fill.realized_pnl) == (D("149.000"), D("149.000"), D("335.57"))


def test_account_figures_value_longs_at_the_bid_and_shorts_at_the_ask(app):
    with app.app_context():
        _, pid, _ = live_account()
        buy(pid, lots="0.5")
        buy(pid, lots="0.1", symbol="OTC_GOLD", side="SELL", tick=at("2050.00", "2050.30"), leverage=20)
        prices = {"OTC_EUR_USD": at("1.08710", "1.08720"), "OTC_GOLD": at("2040.00", "2040.30")}
        figures = positions.account_figures(account(pid), prices.get)
        # EUR/USD +20 pips x 0.5 lots = 100; gold short 0.1 x 100 oz x (2050.00 - 2040.30) = 97
        assert figures.unrealised == D("197.00")
        assert figures.used_margin == D("1808.50") + D("1025.00")
        assert figures.equity == D("10197.00")
        assert figures.free_margin == D("10197.00") - D("2833.50")


def pending(pid: int, cid: int, uid: int, side: str, order_type: str, level: str, lots: str = "1") -> CfdOrder:
    order = CfdOrder(competition_id=cid, participant_id=pid, user_id=uid, client_key=f"k-{side}-{order_type}-{level}",
                     symbol="OTC_EUR_USD", side=side, order_type=order_type, lots=D(lots), price=D(level),
                     stop_loss=None, take_profit=D("1.20000") if side == "BUY" else None, leverage=30,
                     status="PENDING")
    db.session.add(order)
    db.session.commit()
    return order


@pytest.mark.parametrize(("side", "order_type", "level", "bid", "ask", "price"), [
    ("BUY", "LIMIT", "1.08500", "1.08470", "1.08480", "1.08480"),  # the limit or better
    ("SELL", "LIMIT", "1.08600", "1.08650", "1.08660", "1.08650"),
    ("BUY", "STOP", "1.08600", "1.08690", "1.08700", "1.08700"),  # a gap: the tick's ask, not the stop
    ("SELL", "STOP", "1.08400", "1.08300", "1.08310", "1.08300"),  # a gap: the tick's bid, not the stop
])
def test_pending_orders_fill_by_the_rules_at_the_tick(app, side, order_type, level, bid, ask, price):
    with app.app_context():
        cid, pid, uid = live_account()
        order = pending(pid, cid, uid, side, order_type, level)
        tick = at(bid, ask, tick_id=77, ts_ms=1_700_000_000_777)
        rule = positions.fill_rule(side, order_type, D(level), tick)
        position = positions.fill_pending_order(order.id, at=tick, rule=rule)
        db.session.commit()
        assert (position.open_price, position.side, position.order_id) == (D(price), side, order.id)
        assert position.take_profit == order.take_profit
        order = db.session.get(CfdOrder, order.id)
        assert (order.status, order.position_id) == ("FILLED", position.id)
        [fill] = fills(position.id)
        assert (fill.price, fill.tick_id, fill.tick_ts_ms, fill.bid, fill.ask, fill.reason, fill.order_id) == (
            D(price), 77, 1_700_000_000_777, D(bid), D(ask), order_type, order.id)
        assert level in fill.rule and ("limit" in fill.rule or "tick's price" in fill.rule)
        assert positions.fill_pending_order(order.id, at=tick, rule=rule) is None  # exactly once
        assert account(pid).trades_count == 1


def test_a_tick_that_does_not_cross_the_level_fills_nothing(app):
    with app.app_context():
        cid, pid, uid = live_account()
        order = pending(pid, cid, uid, "BUY", "LIMIT", "1.08500")
        with pytest.raises(ValueError, match="does not trigger"):
            positions.fill_pending_order(order.id, at=at("1.08500", "1.08510"), rule="x")
        db.session.rollback()
        assert db.session.get(CfdOrder, order.id).status == "PENDING"


def test_a_triggered_order_without_the_margin_then_is_rejected_with_the_reason(app):
    with app.app_context():
        cid, pid, uid = live_account()
        order = pending(pid, cid, uid, "BUY", "STOP", "1.08600", lots="5")  # needs 18,116.67
        assert positions.fill_pending_order(order.id, at=at("1.08690", "1.08700"), rule="x") is None
        db.session.commit()
        order = db.session.get(CfdOrder, order.id)
        assert order.status == "REJECTED" and "Not enough free margin" in order.status_reason
        assert db.session.scalar(select(func.count()).select_from(CfdPosition)) == 0
        assert (account(pid).used_margin, account(pid).trades_count) == (D("0.00"), 0)


def test_nothing_fills_once_the_competition_is_no_longer_live(app):
    with app.app_context():
        cid, pid, uid = live_account()
        order = pending(pid, cid, uid, "BUY", "LIMIT", "1.08500")
        db.session.get(Competition, cid).status = "ENDED"
        db.session.commit()
        assert positions.fill_pending_order(order.id, at=at("1.08470", "1.08480"), rule="x") is None
        db.session.commit()
        assert db.session.get(CfdOrder, order.id).status == "PENDING"  # the end's closer cancels it
        assert account(pid).trades_count == 0


def test_the_end_cancels_pending_orders_and_closes_every_position_at_its_tick(app):
    with app.app_context():
        cid, pid, uid = live_account()
        pending(pid, cid, uid, "BUY", "LIMIT", "1.08000")
        buy(pid, lots="0.5")
        buy(pid, lots="0.1", symbol="OTC_GOLD", side="SELL", tick=at("2050.00", "2050.30"), leverage=20)
        assert positions.cancel_open_orders(cid, "The competition ended.") == 1
        end = {"OTC_EUR_USD": at("1.08710", "1.08720", tick_id=90), "OTC_GOLD": at("2040.00", "2040.30", tick_id=91)}
        assert positions.close_all_at(cid, end.get, "COMPETITION_END") == 2
        db.session.commit()
        assert positions.close_all_at(cid, end.get, "COMPETITION_END") == 0
        acc = account(pid)
        assert (acc.cash, acc.equity, acc.used_margin) == (D("10197.00"), D("10197.00"), D("0.00"))
        closes = db.session.scalars(select(CfdFill).where(CfdFill.action == "CLOSE").order_by(CfdFill.id)).all()
        assert [(f.tick_id, f.reason) for f in closes] == [(90, "COMPETITION_END"), (91, "COMPETITION_END")]
        assert db.session.scalar(select(CfdOrder.status)) == "CANCELLED"


@pytest.mark.postgres
def test_two_closers_racing_close_the_position_once(pg_app):
    with pg_app.app_context():
        _, pid, _ = live_account()
        position_id = buy(pid).id

    def close(i: int):
        fill = positions.close_position(position_id, at=at("1.08610", "1.08620", tick_id=100 + i),
                                        reason="MANUAL" if i % 2 else "STOP_LOSS", rule="race")
        db.session.commit()
        return fill is not None

    for _ in range(3):
        outcomes = run_in_threads(pg_app, 8, close)
        assert sum(o is True for o in outcomes) <= 1 and all(isinstance(o, bool) for o in outcomes), outcomes
    with pg_app.app_context():
        assert len(fills(position_id)) == 2
        acc = account(pid)
        assert (acc.cash, acc.used_margin) == (D("10100.00"), D("0.00"))
