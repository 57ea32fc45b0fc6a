"""A trader's figures from their closed trades, in one pass: a pure function of a list of
(closed_at, symbol, pnl) with Decimal P&L, so it can be checked against a hand count.

Definitions (the journal page says the same):
- a win has pnl > 0, a loss pnl < 0; a trade with pnl == 0 (a tie) is neither, counts in
  the trade count, and ends both streaks;
- win rate = wins / trades; expectancy = net P&L / trades (the average result of a trade);
- profit factor = gross profit / gross loss (None when there is no loss);
- the equity curve starts at `starting_equity` and adds each trade's P&L in closing order;
  the max drawdown is the largest fall from a running peak of that curve to a later
  trough, with the dates of both (a peak date of None is the start, before any trade).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0")
HUNDRED = Decimal("100")


@dataclass(frozen=True)
class ClosedTrade:
    closed_at: datetime
    symbol: str
    pnl: Decimal


@dataclass
class Bucket:
    """Trades of one market or one hour of the day."""
    trades: int = 0
    wins: int = 0
    losses: int = 0
    pnl: Decimal = ZERO

    def add(self, pnl: Decimal) -> None:
        self.trades += 1
        self.wins += pnl > 0
        self.losses += pnl < 0
        self.pnl += pnl

    @property
    def win_rate(self) -> Decimal | None:
        return _percent(self.wins, self.trades)


@dataclass
class Drawdown:
    amount: Decimal = ZERO
    percent: Decimal | None = None  # of the peak equity
    peak_at: datetime | None = None  # None: the starting equity was the peak
    trough_at: datetime | None = None


@dataclass
class JournalStats:
    starting_equity: Decimal
    trades: int = 0
    wins: int = 0
    losses: int = 0
    ties: int = 0
    gross_profit: Decimal = ZERO
    gross_loss: Decimal = ZERO  # a negative number (or 0)
    best: ClosedTrade | None = None
    worst: ClosedTrade | None = None
    longest_win_streak: int = 0
    longest_loss_streak: int = 0
    drawdown: Drawdown = field(default_factory=Drawdown)
    equity_curve: list[tuple[datetime, Decimal]] = field(default_factory=list)
    by_market: dict[str, Bucket] = field(default_factory=dict)
    by_hour: dict[int, Bucket] = field(default_factory=dict)  # UTC hour of the close -> bucket

    @property
    def net_pnl(self) -> Decimal:
        return self.gross_profit + self.gross_loss

    @property
    def final_equity(self) -> Decimal:
        return self.starting_equity + self.net_pnl

    @property
    def win_rate(self) -> Decimal | None:
        return _percent(self.wins, self.trades)

    @property
    def expectancy(self) -> Decimal | None:
        return _money(self.net_pnl / self.trades) if self.trades else None

    @property
    def profit_factor(self) -> Decimal | None:
        return (self.gross_profit / -self.gross_loss).quantize(CENT) if self.gross_loss else None

    @property
    def average_win(self) -> Decimal | None:
        return _money(self.gross_profit / self.wins) if self.wins else None

    @property
    def average_loss(self) -> Decimal | None:
        return _money(self.gross_loss / self.losses) if self.losses else None

    @property
    def markets(self) -> list[tuple[str, Bucket]]:
        """Best net P&L first."""
        return sorted(self.by_market.items(), key=lambda item: (-item[1].pnl, item[0]))

    @property
    def hours(self) -> list[tuple[int, Bucket]]:
        return sorted(self.by_hour.items())


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT)


def _percent(part: int, whole: int) -> Decimal | None:
    return (Decimal(part) * HUNDRED / whole).quantize(CENT) if whole else None


def journal_stats(trades: Iterable[tuple[datetime, str, Decimal]], starting_equity: Decimal = ZERO) -> JournalStats:
    """Every figure in one pass over the trades, taken in closing order (ties in the order given)."""
    rows = sorted((ClosedTrade(*row) for row in trades), key=lambda t: t.closed_at)
    stats = JournalStats(starting_equity=starting_equity)
    equity = peak = starting_equity
    peak_at: datetime | None = None
    win_streak = loss_streak = 0
    for trade in rows:
        pnl = trade.pnl
        stats.trades += 1
        if pnl > 0:
            stats.wins += 1
            stats.gross_profit += pnl
            win_streak, loss_streak = win_streak + 1, 0
        elif pnl < 0:
            stats.losses += 1
            stats.gross_loss += pnl
            win_streak, loss_streak = 0, loss_streak + 1
        else:
            stats.ties += 1
            win_streak = loss_streak = 0
        stats.longest_win_streak = max(stats.longest_win_streak, win_streak)
        stats.longest_loss_streak = max(stats.longest_loss_streak, loss_streak)
        if stats.best is None or pnl > stats.best.pnl:
            stats.best = trade
        if stats.worst is None or pnl < stats.worst.pnl:
            stats.worst = trade

        equity += pnl
        stats.equity_curve.append((trade.closed_at, equity))
        if equity > peak:
            peak, peak_at = equity, trade.closed_at
        elif peak - equity > stats.drawdown.amount:
            stats.drawdown = Drawdown(peak - equity, (peak - equity) * HUNDRED / peak if peak > 0 else None,
                                      peak_at, trade.closed_at)

        stats.by_market.setdefault(trade.symbol, Bucket()).add(pnl)
        stats.by_hour.setdefault(trade.closed_at.hour, Bucket()).add(pnl)
    if stats.drawdown.percent is not None:
        stats.drawdown.percent = stats.drawdown.percent.quantize(CENT)
    return stats
