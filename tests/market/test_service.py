"""The catalogue: default markets, look-ups and validated admin changes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from edutradex.errors import DomainError, NotFound
from edutradex.extensions import db
from edutradex.market import config_signal, service
from edutradex.market.models import Market
from edutradex.settings import set_setting


def test_seeder_adds_the_default_markets_once(app, runner):
    result = runner.invoke(args=["seed"])
    assert result.exit_code == 0, result.output
    assert "Markets: added 13" in result.output
    again = runner.invoke(args=["seed"])
    assert "Markets: all defaults present." in again.output
    with app.app_context():
        markets = {m.symbol: m for m in service.list_markets()}
    assert len(markets) == 13
    assert markets["OTC_EUR_USD"].initial_price == Decimal("1.0850")
    assert markets["OTC_GBP_USD"].initial_price == Decimal("1.2650")
    assert markets["OTC_USD_JPY"].initial_price == Decimal("149.50")
    assert markets["OTC_GOLD"].initial_price == Decimal("2050.00")
    for symbol, mode in [("VOLATILITY_10", "LOW"), ("VOLATILITY_25", "MEDIUM"), ("VOLATILITY_50", "HIGH"),
                         ("VOLATILITY_100", "SPIKE")]:
        assert markets[symbol].initial_price == Decimal("100.00")
        assert markets[symbol].volatility_mode == mode
        assert markets[symbol].market_type == "SYNTHETIC"
    forex = {s: m for s, m in markets.items() if m.market_type == "FOREX"}
    assert {m.provider_symbol for m in forex.values()} == {"EUR/USD", "GBP/USD", "USD/JPY", "AUD/USD", "USD/CHF"}
    assert all(m.initial_price is None for m in forex.values())
    assert all(m.payout_percent == Decimal("80.00") for m in markets.values())


def test_seeder_uses_the_default_payout_setting_and_keeps_edited_rows(app):
    with app.app_context():
        set_setting("default_payout_percent", "85")
        db.session.commit()
        service.seed_markets()
        service.update_market("OTC_GOLD", payout_percent="90")
        db.session.commit()
        service.seed_markets()
        assert service.get_market("OTC_EUR_USD").payout_percent == Decimal("85.00")
        assert service.get_market("OTC_GOLD").payout_percent == Decimal("90.00")


def test_get_market_unknown_raises_not_found(seeded):
    with seeded.app_context():
        with pytest.raises(NotFound, match="Unknown market 'NOPE'"):
            service.get_market("NOPE")


def test_list_markets_filters(seeded):
    with seeded.app_context():
        assert len(service.list_markets("OTC")) == 4
        assert len(service.list_markets("SYNTHETIC")) == 4
        service.update_market("OTC_GOLD", active=False)
        db.session.commit()
        assert "OTC_GOLD" not in [m.symbol for m in service.list_markets(active_only=True)]
        with pytest.raises(DomainError):
            service.list_markets("CRYPTO")


def test_update_market_returns_only_what_changed(seeded):
    with seeded.app_context():
        before, after = service.update_market("VOLATILITY_25", volatility_mode="high", trend_bias="0.25",
                                              payout_percent="80.00", spread="0.05")
        db.session.commit()
        assert before == {"volatility_mode": "MEDIUM", "trend_bias": "0.0000", "spread": "0.02000000"}
        assert after == {"volatility_mode": "HIGH", "trend_bias": "0.2500", "spread": "0.05000000"}
        market = service.get_market("VOLATILITY_25")
        assert (market.volatility_mode, market.trend_bias) == ("HIGH", Decimal("0.2500"))
        assert service.update_market("VOLATILITY_25", volatility_mode="HIGH") == ({}, {})


def test_payout_limits_are_inclusive(seeded):
    with seeded.app_context():
        assert service.update_market("OTC_EUR_USD", payout_percent="100")[1] == {"payout_percent": "100.00"}
        assert service.update_market("OTC_EUR_USD", payout_percent="1")[1] == {"payout_percent": "1.00"}
        db.session.rollback()


@pytest.mark.parametrize("changes, message", [
    ({"payout_percent": "0"}, "Payout %: enter 1 to 100"),
    ({"payout_percent": "0.99"}, "Payout %: enter 1 to 100"),
    ({"payout_percent": "100.01"}, "Payout %: enter 1 to 100. A win pays the stake plus this share of it"),
    ({"payout_percent": "150"}, "Payout %: enter 1 to 100"),
    ({"payout_percent": "80.123"}, "at most 2 decimal places"),
    ({"payout_percent": "NaN"}, "enter a number"),
    ({"payout_percent": "1e309"}, "enter a number"),
    ({"payout_percent": "abc"}, "enter a number"),
    ({"min_stake": "-1"}, "Minimum stake: must be more than 0"),
    ({"min_stake": "500", "max_stake": "100"}, "Maximum stake must be at least the minimum stake"),
    ({"max_stake": "0.5"}, "Maximum stake must be at least the minimum stake"),
    ({"trend_bias": "1.5"}, "Trend bias: must be at most 1"),
    ({"trend_bias": "-1.0001"}, "Trend bias: must be at least -1"),
    ({"volatility_mode": "EXTREME"}, "choose LOW, MEDIUM, HIGH or SPIKE"),
    ({"precision": "9"}, "from 0 to 8"),
    ({"precision": "two"}, "whole number"),
    ({"spread": "-0.1"}, "Spread: must be at least 0"),
    ({"initial_price": "0"}, "Start price: must be more than 0"),
    ({"name": "  "}, "Name: cannot be empty"),
    ({"active": "maybe"}, "enter yes or no"),
    ({"symbol": "X"}, "cannot be changed: symbol"),
    ({"market_type": "FOREX"}, "cannot be changed: market_type"),
])
def test_update_market_rejects_bad_values_and_changes_nothing(seeded, changes, message):
    with seeded.app_context():
        before = service.market_config(service.get_market("OTC_EUR_USD"))
        with pytest.raises(DomainError, match=message):
            service.update_market("OTC_EUR_USD", **changes)
        db.session.rollback()
        assert service.market_config(service.get_market("OTC_EUR_USD")) == before


def test_forex_markets_refuse_simulation_settings(seeded):
    with seeded.app_context():
        with pytest.raises(DomainError, match="uses real prices"):
            service.update_market("EUR_USD", volatility_mode="HIGH")
        before, after = service.update_market("EUR_USD", payout_percent="75.5", provider_symbol="EUR/USD")
        assert after == {"payout_percent": "75.50"}


def test_update_of_unknown_market_is_not_found(seeded):
    with seeded.app_context(), pytest.raises(NotFound):
        service.update_market("NOPE", payout_percent="80")


def test_a_change_is_announced_only_after_commit(seeded):
    with seeded.app_context():
        start = config_signal.version()
        service.update_market("OTC_GOLD", trend_bias="0.5")
        assert config_signal.version() == start
        db.session.rollback()
        assert config_signal.version() == start
        service.update_market("OTC_GOLD", trend_bias="0.5")
        db.session.commit()
        assert config_signal.version() != start
        assert db.session.get(Market, service.get_market("OTC_GOLD").id).trend_bias == Decimal("0.5")


def test_payout_above_ten_percent_is_stored_on_sqlite(seeded):
    """Guards the CHECK constraints: SQLite stores scaled integers."""
    with seeded.app_context():
        service.update_market("OTC_GOLD", payout_percent="95", trend_bias="-1")
        db.session.commit()
        assert service.get_market("OTC_GOLD").payout_percent == Decimal("95.00")


def test_market_snapshot_follows_committed_changes_at_once(seeded):
    with seeded.app_context():
        before = service.market_snapshot("OTC_EUR_USD")
        service.update_market("OTC_EUR_USD", payout_percent="91.50", min_stake="2.00")
        db.session.commit()
        after = service.market_snapshot("OTC_EUR_USD")
        assert (before.payout_percent, after.payout_percent) == (Decimal("80.00"), Decimal("91.50"))
        assert after.min_stake == Decimal("2.00")
        assert service.market_snapshot("NOPE") is None
        # a read-only copy: not attached to the request's session
        assert after not in db.session
