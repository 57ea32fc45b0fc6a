"""orders.py: the web's CFD services. Every refusal names its field (where there is one)
and changes nothing; a replayed form is the same order."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from edutradex.competitions import orders, service
from edutradex.competitions.models import CfdFill, CfdOrder, CfdPosition, Competition, Participant
from edutradex.errors import DomainError
from edutradex.extensions import db
from edutradex.market import quotes
from edutradex.market.models import Market
from edutradex.market.service import seed_markets
from edutradex.types import utcnow
from tests.competitions.cfd import account, join, live_account, quote
from tests.competitions.conftest import open_competition, trader
from tests.support.quotes import fresh_quotes  # noqa: F401 - autouse: no quote outlives a test

D = Decimal
_keys = itertools.count(1)


@pytest.fixture
def live(app):
    """(slug, participant id, user id) in a LIVE competition; EUR/USD quoted 1.08500/1.08510."""
    with app.app_context():
        cid, pid, uid = live_account()
        quote("OTC_EUR_USD", "1.08500", "1.08510", tick_id=5)
        heard: list[tuple[str, int]] = []
        app.extensions["cfd_listeners"] = [lambda kind, row_id: heard.append((kind, row_id))]
        yield db.session.get(Competition, cid).slug, pid, uid, heard


def form(**fields) -> dict:
    base = {"client_key": f"order-key-{next(_keys):06d}", "symbol": "OTC_EUR_USD", "side": "BUY",
            "order_type": "MARKET", "lots": "0.10", "stop_loss": "1.08000", "take_profit": "1.09000"}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def state(pid: int) -> tuple:
    db.session.expire_all()
    acc = db.session.get(Participant, pid)
    counts = tuple(db.session.scalar(select(func.count()).select_from(m)) for m in (CfdOrder, CfdPosition, CfdFill))
    rows = tuple(db.session.execute(select(CfdOrder.status, CfdOrder.price, CfdOrder.stop_loss, CfdOrder.take_profit)
                                    .order_by(CfdOrder.id)).all())
    held = tuple(db.session.execute(select(CfdPosition.status, CfdPosition.lots, CfdPosition.stop_loss,
                                           CfdPosition.take_profit).order_by(CfdPosition.id)).all())
    return (acc.cash, acc.equity, acc.used_margin, acc.trades_count, acc.version, counts, rows, held)


def refused(pid: int, call, *, status: int, field: str | None = None, says: str = "") -> DomainError:
    before = state(pid)
    with pytest.raises(DomainError) as caught:
        call()
    assert caught.value.status_code == status, caught.value.message
    assert caught.value.field == field, caught.value.message
    assert says in caught.value.message
    assert state(pid) == before
    return caught.value


def test_rows_the_caller_passes_are_checked_as_the_ones_it_reads(live):
    slug, pid, uid, _ = live
    competition = db.session.scalar(select(Competition).where(Competition.slug == slug))
    mine = db.session.get(Participant, pid)
    order, fresh = orders.place_order_once(slug, uid, form(), competition=competition, participant=mine)
    assert fresh and order.participant_id == pid
    replay = dict(form(), client_key=order.client_key)
    again, placed_again = orders.place_order_once(slug, uid, replay, competition=competition, participant=mine)
    assert not placed_again and again.id == order.id
    # Someone else's participant row is not taken for this user's: the service reads its own.
    other, _ = join(competition.id)
    theirs = db.session.get(Participant, other)
    placed, _ = orders.place_order_once(slug, uid, form(), competition=competition, participant=theirs)
    assert placed.participant_id == pid and placed.user_id == uid
    # A disqualified account passed in is refused as one read would be, nothing written.
    mine = db.session.get(Participant, pid)
    mine.disqualified = True
    db.session.commit()
    refused(pid, lambda: orders.place_order_once(slug, uid, form(), competition=competition,
                                                 participant=db.session.get(Participant, pid)),
            status=403, says="disqualified")


def test_a_market_buy_fills_at_the_ask_with_its_sl_tp_and_notifies_the_engine(live):
    slug, pid, uid, heard = live
    order = orders.place_order(slug, uid, form(lots="0.50", leverage="20"))
    assert (order.status, order.order_type, order.lots, order.leverage) == ("FILLED", "MARKET", D("0.5"), 20)
    position = db.session.get(CfdPosition, order.position_id)
    assert (position.open_price, position.stop_loss, position.take_profit, position.open_tick_id) == (
        D("1.08510"), D("1.08000"), D("1.09000"), 5)
    assert position.margin == D("2712.75")  # 0.5 x 100,000 x 1.0851 / 20
    fill = db.session.scalar(select(CfdFill))
    assert fill.rule == "market buy at the ask 1.08510 of the latest quote at receipt"
    assert (account(pid).used_margin, account(pid).trades_count) == (D("2712.75"), 1)
    assert heard == [("order", order.id), ("position", position.id)]


def test_leverage_defaults_to_the_competitions_cap(live):
    slug, _, uid, _ = live
    assert orders.place_order(slug, uid, form(leverage="")).leverage == 30  # EUR/USD: FX_MAJOR


def test_a_replayed_form_is_the_same_order_and_changes_nothing(live):
    slug, pid, uid, _ = live
    sent = form()
    first = orders.place_order(slug, uid, sent)
    before = state(pid)
    assert orders.place_order(slug, uid, sent).id == first.id
    assert state(pid)[:4] == before[:4] and state(pid)[5:] == before[5:]
    quotes.clear_local_quotes()  # the market went quiet: the replay still answers
    assert orders.place_order(slug, uid, sent).id == first.id
    assert state(pid)[5] == (1, 1, 1)


def test_a_limit_order_rests_pending_and_can_be_modified_and_cancelled(live):
    slug, pid, uid, heard = live
    order = orders.place_order(slug, uid, form(order_type="LIMIT", price="1.08000", stop_loss="1.07500",
                                               take_profit="1.09000"))
    assert (order.status, order.price, order.position_id) == ("PENDING", D("1.08000"), None)
    assert account(pid).used_margin == D("0.00") and heard == [("order", order.id)]
    changed = orders.modify_order(uid, order.id, {"price": "1.08100", "stop_loss": ""})
    assert (changed.price, changed.stop_loss, changed.take_profit) == (D("1.08100"), None, D("1.09000"))
    refused(pid, lambda: orders.modify_order(uid, order.id, {"price": "1.08600"}), status=422, field="price",
            says="below the current ask")
    assert orders.cancel_order(uid, order.id).status == "CANCELLED"
    refused(pid, lambda: orders.cancel_order(uid, order.id), status=409, says="no longer pending")
    refused(pid, lambda: orders.modify_order(uid, order.id, {"price": "1.08000"}), status=409)


def test_a_position_sl_tp_can_be_changed_and_it_closes_in_part_then_in_full(live):
    slug, pid, uid, heard = live
    order = orders.place_order(slug, uid, form(lots="1.00"))
    position = orders.modify_position(uid, order.position_id, {"stop_loss": "1.08200"})
    assert (position.stop_loss, position.take_profit) == (D("1.08200"), D("1.09000"))
    refused(pid, lambda: orders.modify_position(uid, order.position_id, {"take_profit": "1.08400"}), status=422,
            field="take_profit", says="above the current bid")
    refused(pid, lambda: orders.close_position_now(uid, order.position_id, "0.995"), status=422, field="lots")
    refused(pid, lambda: orders.close_position_now(uid, order.position_id, "1.5"), status=422, field="lots")
    quote("OTC_EUR_USD", "1.08600", "1.08610", tick_id=6)
    fill = orders.close_position_now(uid, order.position_id, "0.40")
    assert (fill.lots, fill.price, fill.realized_pnl, fill.tick_id, fill.reason) == (
        D("0.4"), D("1.08600"), D("36.00"), 6, "MANUAL")
    fill = orders.close_position_now(uid, order.position_id, None)
    assert fill.lots == D("0.6")
    acc = account(pid)
    assert (acc.cash, acc.used_margin) == (D("10090.00"), D("0.00"))
    refused(pid, lambda: orders.close_position_now(uid, order.position_id), status=409, says="already closed")


def test_an_order_needing_more_than_the_free_margin_is_refused_with_the_figures(live):
    slug, pid, uid, _ = live
    error = refused(pid, lambda: orders.place_order(slug, uid, form(lots="5")), status=409, field="lots",
                    says="Not enough free margin")
    assert "18,085.00" in error.message and "10,000.00" in error.message


@pytest.mark.parametrize(("fields", "field", "says"), [
    ({"lots": "0.015"}, "lots", "steps of 0.01"),
    ({"lots": "0.005"}, "lots", "at least 0.01"),
    ({"lots": "51"}, "lots", "at most 50"),
    ({"lots": "NaN"}, "lots", "enter a number"),
    ({"lots": "1e3"}, "lots", "enter a number"),
    ({"lots": "9" * 40}, "lots", "at most 50"),
    ({"lots": "-1"}, "lots", "more than 0"),
    ({"lots": "0.00001"}, "lots", "decimal places"),
    ({"stop_loss": "1.08500"}, "stop_loss", "below the current bid"),
    ({"take_profit": "1.08505"}, "take_profit", "above the current ask"),
    ({"side": "SELL", "stop_loss": "1.08400", "take_profit": "1.08000"}, "stop_loss", "above the current ask"),
    ({"side": "SELL", "stop_loss": "1.09000", "take_profit": "1.08505"}, "take_profit", "below the current bid"),
    ({"stop_loss": "NaN"}, "stop_loss", "enter a number"),
    ({"take_profit": "-1"}, "take_profit", "more than 0"),
    ({"order_type": "LIMIT", "price": "1.08510"}, "price", "buy limit goes below the current ask"),
    ({"order_type": "STOP", "price": "1.08400"}, "price", "buy stop goes above the current ask"),
    ({"order_type": "LIMIT", "side": "SELL", "price": "1.08400", "stop_loss": None, "take_profit": None}, "price",
     "sell limit goes above the current bid"),
    ({"order_type": "STOP", "side": "SELL", "price": "1.08600", "stop_loss": None, "take_profit": None}, "price",
     "sell stop goes below the current bid"),
    ({"order_type": "LIMIT", "price": "1.07900"}, "stop_loss", "below the order's price"),
    ({"order_type": "STOP", "price": "1.09500"}, "take_profit", "above the order's price"),
    ({"order_type": "LIMIT", "price": ""}, "price", "enter a number"),
    ({"order_type": "LIMIT", "price": "1.08000", "expires_at": "2001-01-01T00:00"}, "expires_at", "future"),
    ({"order_type": "LIMIT", "price": "1.08000", "expires_at": "soon"}, "expires_at", "date and time"),
    ({"leverage": "31"}, "leverage", "between 1 and 30"),
    ({"leverage": "0"}, "leverage", "between 1 and 30"),
    ({"leverage": "3.5"}, "leverage", "whole number"),
    ({"side": "HOLD"}, "side", "Buy or Sell"),
    ({"order_type": "FOK"}, "order_type", "market, limit or stop"),
    ({"client_key": ""}, "client_key", "submission key"),
    ({"client_key": "x" * 65}, "client_key", "submission key"),
])
def test_bad_input_is_refused_by_field_and_changes_nothing(live, fields, field, says):
    slug, pid, uid, heard = live
    refused(pid, lambda: orders.place_order(slug, uid, form(**fields)), status=422, field=field, says=says)
    assert heard == []


def test_an_expiry_after_the_end_is_refused(live):
    slug, pid, uid, _ = live
    end = db.session.scalar(select(Competition.end_at).where(Competition.slug == slug))
    refused(pid, lambda: orders.place_order(slug, uid, form(order_type="LIMIT", price="1.08000", stop_loss=None,
                                                            expires_at=(end + timedelta(minutes=1)).isoformat())),
            status=422, field="expires_at", says="before the competition ends")


def test_an_unknown_or_closed_market_is_refused(live, app):
    slug, pid, uid, _ = live
    refused(pid, lambda: orders.place_order(slug, uid, form(symbol="NOPE")), status=404, field="symbol")
    db.session.execute(Market.__table__.update().where(Market.symbol == "OTC_EUR_USD").values(active=False))
    db.session.commit()
    app.extensions.pop("market_snapshots", None)
    refused(pid, lambda: orders.place_order(slug, uid, form()), status=409, field="symbol", says="closed")


def test_a_market_not_allowed_in_the_competition_is_refused(app):
    with app.app_context():
        cid, pid, uid = live_account(allowed_markets="SYNTHETIC, OTC_GOLD")
        slug = db.session.get(Competition, cid).slug
        quote("OTC_EUR_USD", "1.08500", "1.08510")
        quote("VOLATILITY_10", "99.990", "100.000")
        refused(pid, lambda: orders.place_order(slug, uid, form()), status=422, field="symbol",
                says="not traded in this competition")
        order = orders.place_order(slug, uid, form(symbol="VOLATILITY_10", lots="1", stop_loss="", take_profit="",
                                                   leverage="10"))
        assert (order.status, order.leverage) == ("FILLED", 10)
        refused(pid, lambda: orders.place_order(slug, uid, form(symbol="VOLATILITY_10", lots="1", stop_loss="",
                                                                take_profit="", leverage="11")),
                status=422, field="leverage", says="between 1 and 10")


def test_a_stale_or_missing_quote_is_refused(live):
    slug, pid, uid, _ = live
    quote("OTC_EUR_USD", "1.08500", "1.08510", age_ms=3000)
    refused(pid, lambda: orders.place_order(slug, uid, form()), status=409, says="Prices are updating")
    quotes.clear_local_quotes()
    refused(pid, lambda: orders.place_order(slug, uid, form()), status=409, says="no live price")


def test_only_a_live_competitions_active_participants_trade(app):
    with app.app_context():
        cid, pid, uid = live_account()
        slug = db.session.get(Competition, cid).slug
        quote("OTC_EUR_USD", "1.08500", "1.08510")
        refused(pid, lambda: orders.place_order(slug, 999_999, form()), status=403, says="not in this competition")
        refused(pid, lambda: orders.place_order("no-such-cup", uid, form()), status=404)
        db.session.get(Participant, pid).disqualified = True
        db.session.commit()
        refused(pid, lambda: orders.place_order(slug, uid, form()), status=403, says="disqualified")
        db.session.get(Participant, pid).disqualified = False
        db.session.get(Participant, pid).status = "LEFT"
        db.session.commit()
        refused(pid, lambda: orders.place_order(slug, uid, form()), status=403)
        db.session.get(Participant, pid).status = "ACTIVE"
        db.session.get(Competition, cid).status = "ENDED"
        db.session.commit()
        refused(pid, lambda: orders.place_order(slug, uid, form()), status=409, says="ended")
        db.session.get(Competition, cid).status = "LIVE"
        db.session.get(Competition, cid).start_at = utcnow() - timedelta(hours=1)
        db.session.get(Competition, cid).end_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
        refused(pid, lambda: orders.place_order(slug, uid, form()), status=409, says="ended")


def test_a_competition_that_has_not_started_refuses_orders(app):
    with app.app_context():
        seed_markets()
        competition = open_competition(min_participants=1)
        uid = trader()
        pid = service.join_competition(competition.id, uid).participant_id
        quote("OTC_EUR_USD", "1.08500", "1.08510")
        refused(pid, lambda: orders.place_order(competition.slug, uid, form()), status=409,
                says="opens when the competition starts")


def test_someone_elses_order_or_position_is_not_found(live):
    slug, pid, uid, _ = live
    order = orders.place_order(slug, uid, form(order_type="LIMIT", price="1.08000", stop_loss=None))
    position_id = orders.place_order(slug, uid, form()).position_id
    cid = db.session.scalar(select(Competition.id).where(Competition.slug == slug))
    _, other = join(cid)
    for call in (lambda: orders.cancel_order(other, order.id),
                 lambda: orders.modify_order(other, order.id, {"price": "1.07000"}),
                 lambda: orders.modify_position(other, position_id, {"stop_loss": ""}),
                 lambda: orders.close_position_now(other, position_id),
                 lambda: orders.cancel_order(other, "abc"),
                 lambda: orders.close_position_now(other, 10**30)):
        error = refused(pid, call, status=404)
        assert error.message in (orders.NO_ORDER, orders.NO_POSITION)
