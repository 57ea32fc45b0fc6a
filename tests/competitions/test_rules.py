"""The rule set (rules.py): the daily-loss golden case, the total-loss floor, max open
positions and lots per order at placement and at a pending fill, min trading days at the
end, FLAG against DISQUALIFY, a breach recorded once across a restart and replay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from edutradex.competitions import leaderboard, lifecycle, orders, positions, rules
from edutradex.competitions.models import Breach, CfdEngineState, CfdOrder, CfdPosition, Competition
from edutradex.extensions import db
from edutradex.market import quotes
from edutradex.types import utcnow
from tests.competitions.cfd import account, live_account, quote
from tests.competitions.test_engine import EUR, Ticks, open_position, pending_order, started
from tests.competitions.test_lifecycle import move_times
from tests.support.quotes import fresh_quotes  # noqa: F401 - autouse: no quote outlives a test

D = Decimal
DAY_MS = rules.DAY_MS


def next_midnight_ms() -> int:
    return (quotes.now_ms() // DAY_MS + 1) * DAY_MS


def ruled(**rule_terms) -> tuple[int, int, int]:
    """A LIVE CFD competition of 100,000 USD running over the next UTC midnight."""
    now = utcnow().replace(microsecond=0)
    return live_account(starting_capital="100000", end_at=now + timedelta(days=3), **rule_terms)


def breaches(participant_id: int) -> list[Breach]:
    db.session.expire_all()
    return list(db.session.scalars(select(Breach).where(Breach.participant_id == participant_id)
                                   .order_by(Breach.id)))


def the_golden_day(participant_id: int, record: Ticks) -> int:
    """Day 1: a long of 10 lots (1,000,000 EUR) closed 4,000 USD up before midnight (balance
    104,000 at midnight), then another long of 10 lots opened at 1.10400 (zero spread: the
    long is worth (bid - 1.10400) x 1,000,000). Returns the second position's id."""
    midnight = next_midnight_ms()
    opened = record(EUR, "1.10000", "1.10000", ts_ms=midnight - 3_600_000)
    first = open_position(participant_id, opened, "10")
    up = record(EUR, "1.10400", "1.10400", ts_ms=midnight - 1_800_000)
    positions.close_position(first, at=positions.At.of_tick(up), reason="MANUAL", rule="manual")
    db.session.commit()
    assert account(participant_id).cash == D("104000.00")
    return open_position(participant_id, up, "10")


# ---- the daily-loss golden case ---------------------------------------------------------------

def test_the_daily_loss_floor_is_the_balance_at_the_previous_utc_midnight_minus_5_percent_of_the_capital(
        db_app, frames):
    """100k start, 104k balance at UTC midnight, 5 %: floor 99,000 the next day (95,000 the
    day before); equity 99,000.01 is no breach, 98,999.99 is one, recorded with its tick."""
    app = db_app
    with app.app_context():
        competition_id, participant_id, user_id = ruled(max_daily_loss_percent="5", breach_action="DISQUALIFY")
        record = Ticks()
        held = the_golden_day(participant_id, record)
        midnight = next_midnight_ms()
        engine = started(app)
        # before midnight the base is the balance at the start of day 1: 100,000 -> floor 95,000
        assert rules.nearest_floor(db.session.get(Competition, competition_id), account(participant_id),
                                   midnight - 1) == ("Daily loss floor", D("95000.00"))
        engine([record(EUR, "1.09899999", "1.09899999", ts_ms=midnight - 600_000)])  # equity 98,999.99 on day 1
        assert breaches(participant_id) == []
        assert rules.nearest_floor(db.session.get(Competition, competition_id), account(participant_id),
                                   midnight) == ("Daily loss floor", D("99000.00"))
        engine([record(EUR, "1.09900001", "1.09900001", ts_ms=midnight + 1000)])  # 99,000.01: no breach
        assert breaches(participant_id) == [] and db.session.get(CfdPosition, held).status == "OPEN"
        crossing = record(EUR, "1.09899999", "1.09899999", ts_ms=midnight + 2000)  # 98,999.99
        engine([crossing])
        [breach] = breaches(participant_id)
        assert (breach.rule, breach.action, breach.tick_id, breach.tick_ts_ms) == (
            "DAILY_LOSS", "DISQUALIFY", crossing.id, crossing.ts_ms)
        assert (breach.equity, breach.floor) == (D("98999.99"), D("99000.00"))
        # DISQUALIFY: closed at that tick, out of the ranking, the reason names the rule and the tick
        closed = db.session.get(CfdPosition, held)
        assert (closed.status, closed.close_reason, closed.close_price) == ("CLOSED", "RULE_BREACH", D("1.09899999"))
        participant = account(participant_id)
        assert participant.disqualified and participant.cash == D("98999.99")
        assert "max daily loss" in participant.disqualify_reason and str(crossing.id) in participant.disqualify_reason
        assert [p["event"] for u, p in frames if u == user_id][-1] == "rule_breach"
        leaderboard.publish_boards(app)  # off the board
        assert participant_id not in [e.participant_id for e in leaderboard.top(competition_id, 0, 100)]


def test_a_flag_records_the_breach_once_and_leaves_the_account_trading_across_a_restart_and_replay(db_app):
    app = db_app
    with app.app_context():
        competition_id, participant_id, _ = ruled(max_daily_loss_percent="5", breach_action="FLAG")
        record = Ticks()
        held = the_golden_day(participant_id, record)
        midnight = next_midnight_ms()
        engine = started(app)
        first = record(EUR, "1.09800000", "1.09800000", ts_ms=midnight + 1000)  # 98,000
        engine([first, record(EUR, "1.09700000", "1.09700000", ts_ms=midnight + 2000)])
        [breach] = breaches(participant_id)
        assert (breach.rule, breach.action, breach.tick_id, breach.equity) == (
            "DAILY_LOSS", "FLAG", first.id, D("98000.00"))
        breach_id = breach.id
        assert not account(participant_id).disqualified and db.session.get(CfdPosition, held).status == "OPEN"
        # a restart from an old watermark replays the same ticks: nothing new is recorded
        db.session.execute(update(CfdEngineState).values(last_tick_id=first.id - 1))
        db.session.commit()
        engine = started(app)
        engine([record(EUR, "1.09600000", "1.09600000", ts_ms=midnight + 3000)])
        assert [b.id for b in breaches(participant_id)] == [breach_id]
        assert rules.nearest_floor(db.session.get(Competition, competition_id), account(participant_id)) is None


def test_the_total_loss_floor_is_the_starting_capital_minus_its_percent(app):
    with app.app_context():
        _, participant_id, _ = ruled(max_total_loss_percent="10", breach_action="DISQUALIFY")
        record = Ticks()
        opened = record(EUR, "1.10000", "1.10000")
        held = open_position(participant_id, opened, "10")
        engine = started(app)
        engine([record(EUR, "1.09000", "1.09000")])  # equity exactly 90,000.00: at the floor, no breach
        assert breaches(participant_id) == []
        below = record(EUR, "1.08999999", "1.08999999")
        engine([below])
        [breach] = breaches(participant_id)
        assert (breach.rule, breach.tick_id, breach.equity, breach.floor) == (
            "TOTAL_LOSS", below.id, D("89999.99"), D("90000.00"))
        assert db.session.get(CfdPosition, held).close_reason == "RULE_BREACH"
        assert account(participant_id).disqualified


def test_a_stop_loss_that_realises_a_loss_past_the_floor_is_a_breach_at_its_tick(app):
    """The close leaves nothing held (the risk pass no longer sees the account)."""
    with app.app_context():
        _, participant_id, _ = ruled(max_total_loss_percent="10", breach_action="FLAG")
        record = Ticks()
        opened = record(EUR, "1.10000", "1.10000")
        open_position(participant_id, opened, "10", stop_loss="1.09500")
        engine = started(app)
        gap = record(EUR, "1.08000", "1.08000")  # gaps through the SL: closed at 1.08000, -20,000
        engine([gap])
        [breach] = breaches(participant_id)
        assert (breach.rule, breach.tick_id, breach.equity) == ("TOTAL_LOSS", gap.id, D("80000.00"))


def test_the_pure_floors_and_the_rolled_day_base():
    rule_set = rules.RuleSet(D("100000.00"), D("5"), D("10"))
    day = 20_000
    # the cash moved today: the base is the balance recorded at the first change
    assert rules.floors(rule_set, cash=D("101000"), day_start_balance=D("104000"), day_start_day=day,
                        topped_up=D("0"), day=day) == {"DAILY_LOSS": D("99000.00"), "TOTAL_LOSS": D("90000.00")}
    # not moved today: the cash itself is the balance at midnight; a rebuy's top-up raises the total floor
    assert rules.floors(rule_set, cash=D("104000"), day_start_balance=D("100000"), day_start_day=day - 1,
                        topped_up=D("8000"), day=day) == {"DAILY_LOSS": D("99000.00"), "TOTAL_LOSS": D("98000.00")}
    assert rules.breached({"DAILY_LOSS": D("99000.00")}, D("99000.00")) == {}
    assert rules.breached({"DAILY_LOSS": D("99000.00")}, D("98999.99")) == {"DAILY_LOSS": D("99000.00")}


# ---- orders -----------------------------------------------------------------------------------

def _form(**fields) -> dict:
    from uuid import uuid4

    return {"client_key": uuid4().hex, "symbol": EUR, "side": "BUY", "order_type": "MARKET", "lots": "1",
            "leverage": "30", **fields}


def test_max_open_positions_and_max_lots_refuse_an_order_at_placement(app):
    with app.app_context():
        competition_id, participant_id, user_id = ruled(max_open_positions="2", max_lots_per_order="1.5")
        slug = db.session.get(Competition, competition_id).slug
        quote(EUR, "1.10000", "1.10020")
        with pytest.raises(rules.RuleRefusal, match="at most 1.5 lots in one order"):
            orders.place_order(slug, user_id, _form(lots="2"))
        orders.place_order(slug, user_id, _form(lots="1.5"))
        orders.place_order(slug, user_id, _form())
        with pytest.raises(rules.RuleRefusal, match="at most 2 open positions at a time") as refused:
            orders.place_order(slug, user_id, _form())
        assert refused.value.status_code == 409 and refused.value.field == "lots"
        assert db.session.query(CfdOrder).filter_by(participant_id=participant_id).count() == 2


def test_a_pending_order_that_would_exceed_max_open_positions_is_rejected_with_the_reason(app):
    with app.app_context():
        competition_id, participant_id, _ = ruled(max_open_positions="1")
        record = Ticks()
        opened = record(EUR, "1.10000", "1.10020")
        open_position(participant_id, opened, "1")
        order_id = pending_order(competition_id, participant_id, side="BUY", order_type="LIMIT", price="1.09000")
        engine = started(app)
        engine([record(EUR, "1.08980", "1.08990")])
        db.session.expire_all()
        order = db.session.get(CfdOrder, order_id)
        assert order.status == "REJECTED" and order.position_id is None
        assert "at most 1 open position at a time" in order.status_reason
        assert db.session.query(CfdPosition).filter_by(participant_id=participant_id).count() == 1


def test_max_lots_per_order_is_checked_again_at_a_pending_fill(app):
    with app.app_context():
        competition_id, participant_id, _ = ruled(max_lots_per_order="1")
        record = Ticks()
        record(EUR, "1.10000", "1.10020")
        # written as the web would not (terms said 1 lot): the fill still refuses it
        order_id = pending_order(competition_id, participant_id, side="BUY", order_type="LIMIT", price="1.09000",
                                 lots="3")
        engine = started(app)
        engine([record(EUR, "1.08980", "1.08990")])
        db.session.expire_all()
        order = db.session.get(CfdOrder, order_id)
        assert order.status == "REJECTED" and "at most 1 lots" in order.status_reason


# ---- min trading days at the end ----------------------------------------------------------------

def _fills_on_days(participant_id: int, days: list[int]) -> None:
    """Positions opened at ticks of today (a few seconds ago) and of later UTC days."""
    record = Ticks()
    now = quotes.now_ms()
    for day in days:
        ts_ms = now - 10_000 if day == 0 else (now // DAY_MS + day) * DAY_MS + 3_600_000
        open_position(participant_id, record(EUR, "1.10000", "1.10000", ts_ms=ts_ms), "0.01")


@pytest.mark.parametrize("action", ["FLAG", "DISQUALIFY"])
def test_min_trading_days_at_the_end_takes_a_participant_below_it_out_of_the_prizes(db_app, action):
    app = db_app
    from tests.competitions.cfd import join

    with app.app_context():
        competition_id, short_id, _ = ruled(min_trading_days="2", breach_action=action)
        enough_id, _ = join(competition_id)
        _fills_on_days(short_id, [0, 0])  # two trades, one day
        _fills_on_days(enough_id, [0, 1])
        Ticks()(EUR, "1.10000", "1.10000", ts_ms=quotes.now_ms() - 5000)  # the end's price
        move_times(competition_id, start=utcnow() - timedelta(hours=2), end=utcnow() - timedelta(seconds=1))
        assert lifecycle.end_competition(competition_id)
        short, enough = account(short_id), account(enough_id)
        assert short.final_rank is None and enough.final_rank == 1
        assert short.disqualified is (action == "DISQUALIFY") and not enough.disqualified
        [breach] = breaches(short_id)
        assert (breach.rule, breach.action, breach.tick_id) == ("MIN_TRADING_DAYS", action, None)
        assert "traded on 1 day, fewer than the 2 required" in breach.detail
        assert breaches(enough_id) == []


def test_the_day_of_a_fill_is_its_utc_day():
    assert rules.epoch_day(int(datetime(2026, 12, 2, 23, 59, 59, 999000, tzinfo=UTC).timestamp() * 1000)) + 1 == \
        rules.epoch_day(int(datetime(2026, 12, 3, tzinfo=UTC).timestamp() * 1000))


# ---- what the trader and the admin see --------------------------------------------------------------

def test_the_account_bar_shows_the_distance_to_the_nearest_floor_and_a_refused_order_is_an_error_fragment(
        app, client):
    from tests.competitions.test_terminal import _email, place
    from tests.factories import PASSWORD
    from tests.support.web import AuthActions

    with app.app_context():
        cid, pid, uid = live_account(max_daily_loss_percent="5", max_total_loss_percent="8", max_lots_per_order="1")
        slug = db.session.get(Competition, cid).slug
        email = _email(uid)
        quote(EUR, "1.08500", "1.08510", tick_id=7)
    AuthActions(client).login(email, PASSWORD)
    desk = {"url": f"/competitions/{slug}/trade"}
    html = client.get(desk["url"]).get_data(as_text=True)
    # 10,000 start: daily floor 9,500.00, total floor 9,200.00; the nearest (highest) is shown
    assert 'data-testid="rule-distance"' in html and "Daily loss floor" in html
    assert 'data-floor="9500.00">9,500.00 · 500.00 away' in html
    refused = place(client, desk, lots="1.5")
    assert refused.status_code == 409
    assert "at most 1 lots in one order" in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.query(CfdOrder).filter_by(participant_id=pid).count() == 0


def test_a_rebuy_counts_its_top_up_as_paid_in_for_both_floors(app):
    from edutradex.competitions import service
    from tests.competitions.conftest import fund

    with app.app_context():
        competition_id, participant_id, user_id = ruled(max_daily_loss_percent="5", max_total_loss_percent="10",
                                                        rebuys_allowed="on", max_rebuys="1", rebuy_fee="1")
        fund(user_id, "5.00")
        record = Ticks()
        held = open_position(participant_id, record(EUR, "1.10000", "1.10000"), "10")
        down = record(EUR, "1.09600", "1.09600")  # -4,000 today: 1,000 left of the 5,000 daily allowance
        quote(EUR, "1.09600", "1.09600", tick_id=down.id)
        positions.close_position(held, at=positions.At.of_tick(down), reason="MANUAL", rule="manual")
        db.session.commit()
        service.rebuy(competition_id, user_id)
        participant = account(participant_id)
        assert (participant.cash, participant.topped_up) == (D("100000.00"), D("4000.00"))
        # the day's base was 100,000 at midnight and the rebuy paid in 4,000 more today: still
        # 1,000 to lose today (not a fresh 5,000); the total floor rises by the top-up
        assert rules.floors(rules.RuleSet.of(db.session.get(Competition, competition_id)), cash=participant.cash,
                            day_start_balance=participant.day_start_balance, day_start_day=participant.day_start_day,
                            topped_up=participant.topped_up, day=rules.epoch_day(down.ts_ms)) == {
            "DAILY_LOSS": D("99000.00"), "TOTAL_LOSS": D("94000.00")}


def test_a_manual_close_that_realises_a_loss_past_the_floor_is_judged_at_the_close_tick(app):
    """The web closes before the engine saw that tick: the account holds nothing when the
    engine gets there, so the close itself is judged, at its own tick."""
    from edutradex.competitions import engine as engine_module

    with app.app_context():
        _, participant_id, _ = ruled(max_total_loss_percent="10", breach_action="DISQUALIFY")
        record = Ticks()
        held = open_position(participant_id, record(EUR, "1.10000", "1.10000"), "10")
        engine = started(app)
        crash = record(EUR, "1.08000", "1.08000")  # recorded; the engine has not processed it yet
        positions.close_position(held, at=positions.At.of_tick(crash), reason="MANUAL", rule="manual close")
        db.session.commit()
        engine_module.notify("position", held)
        engine([crash])
        [breach] = breaches(participant_id)
        assert (breach.rule, breach.tick_id, breach.equity, breach.floor) == (
            "TOTAL_LOSS", crash.id, D("80000.00"), D("90000.00"))
        assert account(participant_id).disqualified
