"""CFD arithmetic against hand-computed MetaTrader 5 examples (CFD-Leverage margin mode)."""

from decimal import Decimal as D  # noqa: N817 - reads like the tables it checks

import pytest

from edutradex.competitions.margin import (
    Holding,
    close_price,
    figures,
    open_price,
    profit_usd,
    required_margin,
    stop_out_plan,
    usd_rate,
)


def test_eur_usd_long_margin_and_profit():
    # buy 1 lot at the ask 1.10000; 100,000 EUR x 1.1 = 110,000 USD / 30 = 3,666.67
    assert open_price("BUY", D("1.09990"), D("1.10000")) == D("1.10000")
    assert required_margin(D("1"), D("100000"), D("1.10000"), None, 30) == D("3666.67")
    # closed at the bid 1.10250: 0.0025 x 100,000 = 250.00 USD
    assert close_price("BUY", D("1.10250"), D("1.10260")) == D("1.10250")
    assert profit_usd("BUY", D("1.10000"), D("1.10250"), D("1"), D("100000"), None) == D("250.00")


def test_usd_jpy_short_converts_yen_into_dollars():
    # sell 0.5 lots at the bid 150.000; margin 0.5 x 100,000 USD / 30 = 1,666.67 (the price cancels out)
    rate = usd_rate("USD_JPY", "USD_JPY", D("150.000"))
    assert rate == D("150.000")
    assert required_margin(D("0.5"), D("100000"), D("150.000"), rate, 30) == D("1666.67")
    # closed at the ask 149.000: 1 x 0.5 x 100,000 = 50,000 JPY / 149.000 = 335.57 USD
    close_rate = usd_rate("USD_JPY", "USD_JPY", D("149.000"))
    assert profit_usd("SELL", D("150.000"), D("149.000"), D("0.5"), D("100000"), close_rate) == D("335.57")


def test_gold_long():
    # 0.1 lot = 10 oz at 2,050.30: 20,503.00 / 20 = 1,025.15; closed at 2,040.00: -10.30 x 10 = -103.00
    assert required_margin(D("0.1"), D("100"), D("2050.30"), None, 20) == D("1025.15")
    assert profit_usd("BUY", D("2050.30"), D("2040.00"), D("0.1"), D("100"), None) == D("-103.00")


def test_conversion_through_another_market_needs_its_price():
    assert usd_rate("OTC_GOLD", None, D("2050")) is None
    assert usd_rate("CHF_JPY", "USD_JPY", D("170"), D("150")) == D("150")
    with pytest.raises(ValueError):
        usd_rate("CHF_JPY", "USD_JPY", D("170"), None)


def test_account_figures():
    long = Holding(1, "BUY", D("1"), D("100000"), D("1.10000"), D("3666.67"), bid=D("1.09900"), ask=D("1.09910"))
    f = figures(D("10000.00"), [long])
    assert f.unrealised == D("-100.00")  # valued at the bid
    assert f.equity == D("9900.00")
    assert f.used_margin == D("3666.67")
    assert f.free_margin == D("6233.33")
    assert f.margin_level == D("270.00")  # 9,900 / 3,666.67 x 100 = 269.999...
    assert figures(D("10000.00"), []).margin_level is None


def test_stop_out_closes_the_largest_loss_first_until_the_level_recovers():
    # Three losing EUR/USD longs opened at 1.10000 (margin 366.67 each), 1.05000 bid now.
    def long(id_, lots, open_):
        return Holding(id_, "BUY", D(lots), D("100000"), D(open_), required_margin(D(lots), D("100000"), D(open_), None, 30),
                       bid=D("1.05000"), ask=D("1.05010"))
    a, b, c = long(1, "0.1", "1.10000"), long(2, "0.3", "1.07000"), long(3, "0.2", "1.06000")
    # losses: a -500.00, b -600.00, c -200.00 -> equity 2,000 - 1,300 = 700; used 366.67 + 1,070.00 + 706.67
    plan = stop_out_plan(D("2000.00"), [a, b, c], D("50"))
    before = figures(D("2000.00"), [a, b, c])
    assert before.equity == D("700.00") and before.margin_level < 50
    # b (largest loss) goes first: balance 1,400, equity 700 over 1,073.34 used = 65.22 % > 50: stop
    assert plan.close == (2,)
    assert not plan.negative_balance
    assert plan.after.margin_level == D("65.22")


def test_stop_out_keeps_closing_while_below_the_level():
    def short(id_, open_, ask):
        return Holding(id_, "SELL", D("1"), D("1"), D(open_), D("10.00"), bid=D(ask) - 1, ask=D(ask))
    # equity 100 - 45 - 40 - 10 = 5 over 30 used = 16.67 %
    holdings = [short(1, "100", "145"), short(2, "100", "140"), short(3, "100", "110")]
    plan = stop_out_plan(D("100.00"), holdings, D("50"))
    # close 1 (-45): equity 5 / 20 = 25 % still below; close 2 (-40): 5 / 10 = 50 % not below: stop
    assert plan.close == (1, 2)
    assert plan.after.margin_level == D("50.00")


def test_negative_equity_closes_everything():
    gap = Holding(1, "BUY", D("1"), D("100"), D("2000"), D("10000.00"), bid=D("1800"), ask=D("1801"))
    plan = stop_out_plan(D("10000.00"), [gap], D("50"))  # -20,000 loss: equity -10,000
    assert plan.close == (1,) and plan.negative_balance
    assert plan.after.equity == D("0.00")


def test_leverage_must_be_positive():
    with pytest.raises(ValueError):
        required_margin(D("1"), D("1"), D("1"), None, 0)
