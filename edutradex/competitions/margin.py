"""CFD arithmetic of a competition account, exact in Decimal: prices, profit, margin,
equity and the stop-out plan. Pure functions: no database, no clock.

The formulas are MetaTrader 5's (the "CFD-Leverage" margin mode), which real brokers publish:

- a buy opens at the ask and is valued (and closed) at the bid; a sell opens at the bid and
  is valued at the ask;
- profit = (close - open) x lots x contract size for a long, (open - close) x ... for a
  short, in the market's quote currency; converted into the account currency (USD) by
  dividing by the USD/<quote> price (USD/JPY profit in JPY / the USD/JPY price); a market
  quoted in USD needs no conversion;
- required margin = lots x contract size x price (in USD) / leverage;
- equity = balance + unrealised profit; free margin = equity - used margin; margin level =
  equity / used margin x 100 (none without open positions).

Money (profit, margin, equity) is rounded half-even to cents, once, where it is stated.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from .models import Side

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
HUNDRED = Decimal(100)


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_EVEN)


def is_long(side: str) -> bool:
    return side == Side.BUY.value


def open_price(side: str, bid: Decimal, ask: Decimal) -> Decimal:
    """The price a market order of `side` fills at: buy at the ask, sell at the bid."""
    return ask if is_long(side) else bid


def close_price(side: str, bid: Decimal, ask: Decimal) -> Decimal:
    """The price a position of `side` is valued and closed at: longs at the bid, shorts at the ask."""
    return bid if is_long(side) else ask


def usd_rate(symbol: str, conversion_symbol: str | None, price: Decimal,
             conversion_price: Decimal | None = None) -> Decimal | None:
    """How many units of the quote currency one USD buys, or None for a market quoted in USD.
    For a pair quoted against its own USD base (USD/JPY) it is the price being used itself;
    otherwise the `conversion_price` of the conversion market."""
    if conversion_symbol is None:
        return None
    if conversion_symbol == symbol:
        return price
    if conversion_price is None or conversion_price <= 0:
        raise ValueError(f"no price to convert {symbol} into USD (needs {conversion_symbol})")
    return conversion_price


def to_usd(amount: Decimal, rate: Decimal | None) -> Decimal:
    """An amount in the quote currency, in USD (not rounded)."""
    return amount if rate is None else amount / rate


def profit_in_quote(side: str, entry: Decimal, exit_: Decimal, lots: Decimal, contract_size: Decimal) -> Decimal:
    move = exit_ - entry if is_long(side) else entry - exit_
    return move * lots * contract_size


def profit_usd(side: str, entry: Decimal, exit_: Decimal, lots: Decimal, contract_size: Decimal,
               rate: Decimal | None) -> Decimal:
    """Realised (or unrealised) profit in USD, rounded half-even to cents."""
    return cents(to_usd(profit_in_quote(side, entry, exit_, lots, contract_size), rate))


def required_margin(lots: Decimal, contract_size: Decimal, price: Decimal, rate: Decimal | None,
                    leverage: int) -> Decimal:
    """MT5 CFD-Leverage: lots x contract size x price, in USD, / leverage; rounded to cents."""
    if leverage < 1:
        raise ValueError("leverage is at least 1")
    return cents(to_usd(lots * contract_size * price, rate) / Decimal(leverage))


@dataclass(frozen=True)
class Holding:
    """An open position as the account arithmetic needs it, with the tick it is valued on."""
    id: int
    side: str
    lots: Decimal
    contract_size: Decimal
    open_price: Decimal
    margin: Decimal
    bid: Decimal
    ask: Decimal
    rate: Decimal | None = None  # USD/<quote> at this tick, None for USD-quoted

    @property
    def price(self) -> Decimal:
        return close_price(self.side, self.bid, self.ask)

    @property
    def profit(self) -> Decimal:
        return profit_usd(self.side, self.open_price, self.price, self.lots, self.contract_size, self.rate)


@dataclass(frozen=True)
class Figures:
    balance: Decimal
    unrealised: Decimal
    equity: Decimal
    used_margin: Decimal
    free_margin: Decimal
    margin_level: Decimal | None  # percent, two decimals; None without open positions

    def below(self, level_percent: Decimal) -> bool:
        return self.margin_level is not None and self.margin_level < level_percent


def figures(balance: Decimal, holdings: Iterable[Holding]) -> Figures:
    unrealised = ZERO
    used = ZERO
    for holding in holdings:
        unrealised += holding.profit
        used += holding.margin
    equity = balance + unrealised
    level = cents(equity / used * HUNDRED) if used > 0 else None
    return Figures(balance, unrealised, equity, used, equity - used, level)


@dataclass(frozen=True)
class StopOut:
    """What a stop-out check decided: the positions to close, in this order, at this tick,
    and whether negative-balance protection applies (equity below 0: close everything and
    leave the balance at 0)."""
    close: tuple[int, ...]
    negative_balance: bool
    after: Figures


def stop_out_plan(balance: Decimal, holdings: Sequence[Holding], stop_out_percent: Decimal) -> StopOut:
    """Closes the position with the largest loss first, one at a time, until the margin
    level is back above `stop_out_percent` (or nothing is open). Equity below 0 closes
    every position (negative-balance protection)."""
    current = figures(balance, holdings)
    if current.equity < 0:
        return StopOut(tuple(h.id for h in holdings), True, figures(ZERO, ()))
    if not current.below(stop_out_percent):
        return StopOut((), False, current)
    remaining = sorted(holdings, key=lambda h: (h.profit, h.id))  # largest loss first; ties: older first
    closed: list[int] = []
    while remaining and current.below(stop_out_percent):
        worst = remaining.pop(0)
        balance += worst.profit
        closed.append(worst.id)
        current = figures(balance, remaining)
    return StopOut(tuple(closed), False, current)
