"""The journal's figures against a trade list counted by hand."""

from datetime import UTC, datetime
from decimal import Decimal

from edutradex.journal.stats import journal_stats

D = Decimal  # short, for the hand-counted figures


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)


# start 1000.00; equity after each: 1050 1020 980 980 960 1060 1085 1050
TRADES = [
    (at(5, 9, 10), "OTC_EUR_USD", D("50.00")),   # W   peak 1050
    (at(5, 9, 40), "OTC_GOLD", D("-30.00")),     # L
    (at(5, 14), "OTC_EUR_USD", D("-40.00")),     # L   worst
    (at(6, 9, 5), "VOLATILITY_10", D("0.00")),   # tie: ends the loss streak
    (at(6, 15, 30), "OTC_GOLD", D("-20.00")),    # L   trough 960: drawdown 90 from 1050
    (at(7, 10), "OTC_EUR_USD", D("100.00")),     # W   best
    (at(7, 11), "OTC_EUR_USD", D("25.00")),      # W
    (at(7, 12), "OTC_GOLD", D("-35.00")),        # L
]


def test_every_figure_matches_the_hand_count():
    shuffled = TRADES[5:] + TRADES[:5]  # taken in closing order whatever the input order
    s = journal_stats(shuffled, D("1000.00"))
    assert (s.trades, s.wins, s.losses, s.ties) == (8, 3, 4, 1)
    assert s.gross_profit == D("175.00") and s.gross_loss == D("-125.00") and s.net_pnl == D("50.00")
    assert s.final_equity == D("1050.00")
    assert s.win_rate == D("37.50")
    assert s.expectancy == D("6.25")
    assert s.profit_factor == D("1.40")
    assert s.average_win == D("58.33") and s.average_loss == D("-31.25")
    assert (s.best.pnl, s.best.closed_at) == (D("100.00"), at(7, 10))
    assert (s.worst.pnl, s.worst.symbol) == (D("-40.00"), "OTC_EUR_USD")
    assert (s.longest_win_streak, s.longest_loss_streak) == (2, 2)
    assert s.drawdown.amount == D("90.00") and s.drawdown.percent == D("8.57")
    assert (s.drawdown.peak_at, s.drawdown.trough_at) == (at(5, 9, 10), at(6, 15, 30))
    assert [e for _, e in s.equity_curve] == [D(x) for x in ("1050", "1020", "980", "980", "960", "1060", "1085", "1050")]

    markets = {symbol: (b.trades, b.wins, b.losses, b.pnl, b.win_rate) for symbol, b in s.markets}
    assert markets == {"OTC_EUR_USD": (4, 3, 1, D("135.00"), D("75.00")),
                       "OTC_GOLD": (3, 0, 3, D("-85.00"), D("0.00")),
                       "VOLATILITY_10": (1, 0, 0, D("0.00"), D("0.00"))}
    assert [symbol for symbol, _ in s.markets] == ["OTC_EUR_USD", "VOLATILITY_10", "OTC_GOLD"]  # best P&L first
    hours = {hour: (b.trades, b.pnl) for hour, b in s.hours}
    assert hours == {9: (3, D("-20.00") + D("40.00")), 10: (1, D("100.00")), 11: (1, D("25.00")),
                     12: (1, D("-35.00")), 14: (1, D("-40.00")), 15: (1, D("-20.00"))}
    assert s.by_hour[9].win_rate == D("33.33")


def test_no_trades_gives_no_figures():
    s = journal_stats([], D("10000.00"))
    assert s.trades == 0 and s.equity_curve == [] and s.best is None
    assert s.win_rate is None and s.expectancy is None and s.profit_factor is None
    assert s.average_win is None and s.average_loss is None
    assert s.drawdown.amount == 0 and s.drawdown.trough_at is None
    assert s.final_equity == D("10000.00")


def test_a_drawdown_from_the_start_has_no_peak_date_and_no_loss_means_no_profit_factor():
    s = journal_stats([(at(1, 1), "X", D("-10.00")), (at(1, 2), "X", D("5.00"))], D("100.00"))
    assert s.drawdown.amount == D("10.00") and s.drawdown.percent == D("10.00")
    assert s.drawdown.peak_at is None and s.drawdown.trough_at == at(1, 1)
    wins_only = journal_stats([(at(1, 1), "X", D("3.00")), (at(1, 2), "X", D("4.00"))])
    assert wins_only.profit_factor is None and wins_only.gross_profit == D("7.00")
    assert wins_only.longest_win_streak == 2 and wins_only.drawdown.amount == 0
