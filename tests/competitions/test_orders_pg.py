"""CFD orders racing on PostgreSQL: threads released at the same instant, each with its own
session and connection."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from edutradex.competitions import orders, positions
from edutradex.competitions.models import CfdFill, CfdOrder, CfdPosition, Competition, Participant
from edutradex.competitions.positions import InsufficientMargin
from edutradex.errors import Conflict
from edutradex.extensions import db
from tests.competitions.cfd import live_account, quote
from tests.support.concurrency import run_in_threads
from tests.support.quotes import fresh_quotes  # noqa: F401 - autouse: no quote outlives a test

pytestmark = pytest.mark.postgres
D = Decimal


def test_50_parallel_market_orders_fill_only_while_the_free_margin_lasts(pg_app):
    with pg_app.app_context():
        cid, pid, uid = live_account()
        slug = db.session.get(Competition, cid).slug
    form = {"symbol": "OTC_EUR_USD", "side": "BUY", "order_type": "MARKET", "lots": "0.10", "leverage": "30",
            "stop_loss": "1.08000", "take_profit": "1.09000"}

    def place(i: int):
        quote("OTC_EUR_USD", "1.08500", "1.08510")  # fresh for every thread, the same price
        return orders.place_order(slug, uid, {**form, "client_key": f"parallel-{i:04d}"})

    outcomes = run_in_threads(pg_app, 50, place)

    # Each order needs 361.70 of margin (0.1 x 100,000 x 1.0851 / 30) and costs 1.00 of
    # equity at once (the spread): the 28th would need 361.70 with 10,000 - 27 x 362.70 = 207.10 free.
    filled = [o for o in outcomes if isinstance(o, CfdOrder)]
    refused = [o for o in outcomes if not isinstance(o, CfdOrder)]
    assert len(filled) == 27, refused[:3]
    assert all(isinstance(o, InsufficientMargin) for o in refused), refused[:3]
    assert all(o.status == "FILLED" and o.position_id for o in filled)
    with pg_app.app_context():
        quote("OTC_EUR_USD", "1.08500", "1.08510")
        account = db.session.get(Participant, pid)
        held = db.session.scalar(select(func.sum(CfdPosition.margin)).where(CfdPosition.participant_id == pid,
                                                                             CfdPosition.status == "OPEN"))
        assert account.used_margin == held == D("361.70") * 27
        assert account.trades_count == 27
        figures = positions.account_figures(account)
        assert figures.free_margin == D("10000.00") - D("27.00") - D("361.70") * 27 >= 0
        assert db.session.scalar(select(func.count()).select_from(CfdOrder)) == 27  # refusals leave no order
        assert db.session.scalar(select(func.count()).select_from(CfdFill)) == 27


def test_a_form_submitted_ten_times_at_once_places_one_order(pg_app):
    with pg_app.app_context():
        cid, pid, uid = live_account()
        slug = db.session.get(Competition, cid).slug
    form = {"client_key": "double-click-0001", "symbol": "OTC_EUR_USD", "side": "SELL", "lots": "0.10"}

    def place(i: int):
        quote("OTC_EUR_USD", "1.08500", "1.08510")
        return orders.place_order(slug, uid, form).id

    outcomes = run_in_threads(pg_app, 10, place)
    assert len(set(outcomes)) == 1 and isinstance(outcomes[0], int), outcomes
    with pg_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(CfdPosition)) == 1
        assert db.session.get(Participant, pid).trades_count == 1


def test_an_order_racing_the_end_waits_for_it_and_is_refused(pg_app):
    """The end updates the competition row and closes every account in one transaction: an
    order that read LIVE just before waits for it (the row's share lock) and is refused,
    instead of opening a position the closer has already looked past."""
    with pg_app.app_context():
        cid, pid, uid = live_account()
        slug = db.session.get(Competition, cid).slug
        ending = db.engine.connect()
        transaction = ending.begin()
        ending.execute(update(Competition).where(Competition.id == cid).values(status="ENDED"))
        started = threading.Event()

        def place(i: int):
            quote("OTC_EUR_USD", "1.08500", "1.08510")
            started.set()
            return orders.place_order(slug, uid, {"client_key": "racing-the-end", "symbol": "OTC_EUR_USD",
                                                  "side": "BUY", "lots": "0.10"})

        racer = threading.Thread(target=lambda: outcome.append(run_in_threads(pg_app, 1, place)[0]))
        outcome: list = []
        racer.start()
        started.wait(10)
        time.sleep(1.0)
        assert outcome == []  # waiting for the end's transaction
        transaction.commit()
        ending.close()
        racer.join(30)
        assert isinstance(outcome[0], Conflict) and "ended" in outcome[0].message, outcome
        assert db.session.scalar(select(func.count()).select_from(CfdPosition)) == 0
        assert db.session.scalar(select(func.count()).select_from(CfdOrder)) == 0
