"""place_trade: validation, the conditional debit, idempotency, frozen terms."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from edutradex.auth.models import User
from edutradex.binary.models import Trade
from edutradex.binary.service import TradeError, place_trade, potential_payout
from edutradex.extensions import db
from edutradex.market.quotes import MarketUnavailable, now_ms
from edutradex.settings import set_setting
from tests.binary.conftest import make_market, publish, tick_and_quote
from tests.factories import make_user

KEY = "key-0000000001"


def trade_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Trade))


def balance(user_id: int) -> Decimal:
    db.session.expire_all()
    return db.session.get(User, user_id).demo_balance


@pytest.fixture
def ctx(db_app):
    with db_app.app_context():
        user = make_user()
        make_market("OTC_EUR_USD")
        yield user.id


def test_place_debits_and_records_the_authoritys_quote(ctx):
    tick = tick_and_quote("OTC_EUR_USD", "1.10003")
    before = now_ms()
    trade = place_trade(ctx, "OTC_EUR_USD", "UP", "10.00", 60, KEY)
    after = now_ms()
    assert balance(ctx) == Decimal("9990.00")
    assert trade.status == "OPEN" and trade.direction == "UP" and trade.stake == Decimal("10.00")
    # entry price = the quote's mid, with its bid/ask, tick id and time
    assert trade.entry_price == Decimal("1.10003")
    assert (trade.entry_bid, trade.entry_ask) == (Decimal("1.09998"), Decimal("1.10008"))
    assert trade.entry_tick_id == tick.id and trade.entry_ts_ms == tick.ts_ms
    assert trade.payout_percent == Decimal("80.00") and trade.potential_payout == Decimal("18.00")
    opened_ms = trade.expires_ms - 60_000
    assert before <= opened_ms <= after
    assert int(trade.expires_at.timestamp() * 1000) == trade.expires_ms
    assert int(trade.opened_at.timestamp() * 1000) == opened_ms


def test_payout_percent_is_frozen_at_placement(ctx):
    from edutradex.market.models import Market

    tick_and_quote("OTC_EUR_USD", "1.1")
    trade = place_trade(ctx, "OTC_EUR_USD", "DOWN", "10", 5, KEY)
    market = db.session.scalar(select(Market).where(Market.symbol == "OTC_EUR_USD"))
    market.payout_percent = Decimal("50.00")
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Trade, trade.id).payout_percent == Decimal("80.00")
    assert db.session.get(Trade, trade.id).potential_payout == Decimal("18.00")


@pytest.mark.parametrize(("stake", "percent", "expected"), [
    ("10.00", "80.00", "18.00"),
    ("1.25", "82.00", "2.28"),   # 2.275 -> half-even rounds to the even cent 2.28
    ("1.25", "86.00", "2.32"),   # 2.325 -> 2.32 (half-up would give 2.33)
    ("0.05", "80.50", "0.09"),   # 0.09025 -> 0.09
    ("3.33", "85.55", "6.18"),   # 6.179815 -> 6.18
    ("999.99", "1000.00", "10999.89"),
])
def test_potential_payout_rounds_half_even_to_cents(stake, percent, expected):
    assert potential_payout(Decimal(stake), Decimal(percent)) == Decimal(expected)


def test_replayed_key_returns_the_same_trade_and_debits_once(ctx):
    tick_and_quote("OTC_EUR_USD", "1.1")
    first = place_trade(ctx, "OTC_EUR_USD", "UP", "10", 5, KEY)
    second = place_trade(ctx, "OTC_EUR_USD", "UP", "10", 5, KEY)
    assert second.id == first.id
    assert trade_count() == 1
    assert balance(ctx) == Decimal("9990.00")


def test_same_key_of_another_user_is_another_trade(ctx):
    tick_and_quote("OTC_EUR_USD", "1.1")
    other = make_user().id
    a = place_trade(ctx, "OTC_EUR_USD", "UP", "10", 5, KEY)
    b = place_trade(other, "OTC_EUR_USD", "UP", "10", 5, KEY)
    assert a.id != b.id and trade_count() == 2


@pytest.mark.parametrize(("stake", "message"), [
    ("0", "must be more than 0"),
    ("0.00", "must be more than 0"),
    ("-5", "must be more than 0"),
    ("NaN", "enter a number"),
    ("sNaN", "enter a number"),
    ("Infinity", "enter a number"),
    ("1e309", "enter a number"),
    ("10.005", "at most 2 decimal places"),
    ("ten", "enter a number"),
    ("", "Stake: enter a number"),
    ("0x10", "enter a number"),
])
def test_bad_stakes_are_refused_and_change_nothing(ctx, stake, message):
    tick_and_quote("OTC_EUR_USD", "1.1")
    with pytest.raises(TradeError, match=message) as err:
        place_trade(ctx, "OTC_EUR_USD", "UP", stake, 5, KEY)
    assert err.value.status_code == 400
    assert trade_count() == 0 and balance(ctx) == Decimal("10000.00")


def test_float_stake_is_refused(ctx):
    tick_and_quote("OTC_EUR_USD", "1.1")
    with pytest.raises(TradeError):
        place_trade(ctx, "OTC_EUR_USD", "UP", 10.0, 5, KEY)


@pytest.mark.parametrize("stake", ["0.99", "1000.01"])
def test_stake_outside_the_markets_range(ctx, stake):
    tick_and_quote("OTC_EUR_USD", "1.1")
    with pytest.raises(TradeError, match="from 1.00 to 1,000.00"):
        place_trade(ctx, "OTC_EUR_USD", "UP", stake, 5, KEY)
    assert trade_count() == 0 and balance(ctx) == Decimal("10000.00")


def test_unknown_symbol(ctx):
    with pytest.raises(TradeError, match="no market called") as err:
        place_trade(ctx, "NOPE", "UP", "10", 5, KEY)
    assert err.value.status_code == 404


def test_inactive_market(ctx):
    make_market("OTC_GBP_USD", active=False)
    tick_and_quote("OTC_GBP_USD", "1.3")
    with pytest.raises(TradeError, match="closed for trading") as err:
        place_trade(ctx, "OTC_GBP_USD", "UP", "10", 5, KEY)
    assert err.value.status_code == 409 and trade_count() == 0


def test_no_quote_and_stale_quote(ctx, db_app):
    with pytest.raises(MarketUnavailable, match="no live price"):
        place_trade(ctx, "OTC_EUR_USD", "UP", "10", 5, KEY)
    stale_ms = now_ms() - int(db_app.config["FEED_STALE_AFTER_SECONDS"] * 1000) - 1
    publish("OTC_EUR_USD", "1.1", ts_ms=stale_ms)
    with pytest.raises(MarketUnavailable, match="stale"):
        place_trade(ctx, "OTC_EUR_USD", "UP", "10", 5, KEY)
    assert trade_count() == 0 and balance(ctx) == Decimal("10000.00")


@pytest.fixture
def server_now(monkeypatch):
    """The placement's clock, frozen (the quote store keeps the real one)."""
    from edutradex.binary import service

    now = now_ms()
    monkeypatch.setattr(service, "now_ms", lambda: now)
    return now


@pytest.mark.parametrize(("age_ms", "accepted"), [(0, True), (1999, True), (2000, True), (2001, False), (9000, False)])
def test_entry_on_a_quote_older_than_the_limit_is_refused(ctx, db_app, server_now, age_ms, accepted):
    assert db_app.config["ENTRY_MAX_QUOTE_AGE_MS"] == 2000  # the default
    quote = publish("OTC_EUR_USD", "1.10003", ts_ms=server_now - age_ms, tick_id=7)
    if not accepted:
        with pytest.raises(TradeError, match="Prices are updating, try again") as err:
            place_trade(ctx, "OTC_EUR_USD", "UP", "10.00", 60, KEY)
        assert err.value.status_code == 409
        assert trade_count() == 0 and balance(ctx) == Decimal("10000.00")
        return
    trade = place_trade(ctx, "OTC_EUR_USD", "UP", "10.00", 60, KEY)
    assert trade.entry_price == quote.mid and trade.entry_ts_ms == quote.ts_ms
    # expiry counts from the server time the trade is accepted, not from the quote's time
    assert trade.expires_ms == server_now + 60_000
    assert int(trade.opened_at.timestamp() * 1000) == server_now
    assert balance(ctx) == Decimal("9990.00")


def test_entry_quote_age_limit_is_a_setting(ctx, db_app, server_now):
    db_app.config["ENTRY_MAX_QUOTE_AGE_MS"] = 500
    publish("OTC_EUR_USD", "1.1", ts_ms=server_now - 501)
    with pytest.raises(TradeError, match="Prices are updating"):
        place_trade(ctx, "OTC_EUR_USD", "UP", "10.00", 60, KEY)
    publish("OTC_EUR_USD", "1.1", ts_ms=server_now - 500)
    assert place_trade(ctx, "OTC_EUR_USD", "UP", "10.00", 60, KEY).expires_ms == server_now + 60_000


def test_a_replay_after_the_quote_aged_returns_the_first_trade(ctx, server_now):
    publish("OTC_EUR_USD", "1.1", ts_ms=server_now)
    first = place_trade(ctx, "OTC_EUR_USD", "UP", "10.00", 60, KEY)
    publish("OTC_EUR_USD", "1.1", ts_ms=server_now - 5000)
    assert place_trade(ctx, "OTC_EUR_USD", "UP", "10.00", 60, KEY).id == first.id
    assert trade_count() == 1 and balance(ctx) == Decimal("9990.00")


@pytest.mark.parametrize("duration", ["7", "0", "-5", "abc", "", "60.5"])
def test_duration_not_allowed(ctx, duration):
    tick_and_quote("OTC_EUR_USD", "1.1")
    with pytest.raises(TradeError):
        place_trade(ctx, "OTC_EUR_USD", "UP", "10", duration, KEY)
    assert trade_count() == 0


def test_allowed_durations_come_from_the_setting(ctx):
    tick_and_quote("OTC_EUR_USD", "1.1")
    set_setting("allowed_durations", "7, 11")
    db.session.commit()
    with pytest.raises(TradeError):
        place_trade(ctx, "OTC_EUR_USD", "UP", "10", 5, KEY)
    assert place_trade(ctx, "OTC_EUR_USD", "UP", "10", 7, KEY).duration_seconds == 7


@pytest.mark.parametrize("direction", ["SIDEWAYS", "", "up; DROP TABLE trades"])
def test_bad_direction(ctx, direction):
    tick_and_quote("OTC_EUR_USD", "1.1")
    with pytest.raises(TradeError, match="UP or DOWN"):
        place_trade(ctx, "OTC_EUR_USD", direction, "10", 5, KEY)


def test_lowercase_direction_is_accepted(ctx):
    tick_and_quote("OTC_EUR_USD", "1.1")
    assert place_trade(ctx, "OTC_EUR_USD", "down", "10", 5, KEY).direction == "DOWN"


def test_insufficient_balance_changes_nothing(ctx):
    tick_and_quote("OTC_EUR_USD", "1.1")
    user = db.session.get(User, ctx)
    user.demo_balance = Decimal("9.99")
    db.session.commit()
    with pytest.raises(TradeError, match="Insufficient balance"):
        place_trade(ctx, "OTC_EUR_USD", "UP", "10.00", 5, KEY)
    assert trade_count() == 0 and balance(ctx) == Decimal("9.99")
    place_trade(ctx, "OTC_EUR_USD", "UP", "9.99", 5, KEY)
    assert balance(ctx) == Decimal("0.00")


def test_open_trade_limit(ctx):
    tick_and_quote("OTC_EUR_USD", "1.1")
    set_setting("max_open_trades", "2")
    db.session.commit()
    place_trade(ctx, "OTC_EUR_USD", "UP", "10", 60, "key-aaaaaaaa1")
    place_trade(ctx, "OTC_EUR_USD", "UP", "10", 60, "key-aaaaaaaa2")
    with pytest.raises(TradeError, match="limit is 2"):
        place_trade(ctx, "OTC_EUR_USD", "UP", "10", 60, "key-aaaaaaaa3")
    assert trade_count() == 2 and balance(ctx) == Decimal("9980.00")


@pytest.mark.parametrize("key", ["", "short", "x" * 65, "has space in it", "<script>alert</script>"])
def test_bad_idempotency_key(ctx, key):
    tick_and_quote("OTC_EUR_USD", "1.1")
    with pytest.raises(TradeError, match="submission key"):
        place_trade(ctx, "OTC_EUR_USD", "UP", "10", 5, key)
    assert trade_count() == 0
