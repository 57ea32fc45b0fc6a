"""A trader's return, measured on the time-weighted money paid in (the Modified Dietz
method, as dYdX's leaderboard measures returns with deposits): a rebuy cannot buy a return.

A rebuy resets the account to the starting capital C; the money it pays in is the top-up
F = C - (the equity given up). Over the period [start, now] of length T:

    P&L     = equity - C - sum(F_i)
    capital = C + sum(F_i x (T - t_i) / T)      (t_i: when top-up i was paid, from the start)
    return  = P&L / capital

A top-up paid halfway counts for half: it was at risk for half the period. Example: C =
10,000; at half time the trader is down to 4,000 and rebuys (F = 6,000); they end at 12,000.
P&L = 12,000 - 10,000 - 6,000 = -4,000 on 10,000 + 3,000 = 13,000: -30.77 %, where a trader
who went from 10,000 to 12,000 without a rebuy made +20.00 %.

The participant row keeps the two sums this needs (``topped_up`` and
``topped_up_cent_seconds`` = sum of top-up cents x seconds from the start), so the return is
computed without reading the rebuys back.

Ranking (``ranking_cents``): in a competition with rebuys the live board and the final
standings rank by the same return, expressed as "equity-equivalent" cents, an integer:

    score = C + floor(C x P&L x T / (C x T + F x T - S))      (all in cents; S = cent-seconds)

= C x (1 + return), so ordering by it is ordering by the return above; without a top-up it
is the equity itself (a competition without rebuys ranks exactly as before). Integer
arithmetic, rounded toward minus infinity (Python's //): deterministic in every process.
T is the whole seconds from the start to the publish (the live board) or to the end (the
final standings); at T = 0 the top-ups count whole (capital C + F, as ``return_percent``).
F x T - S is never taken below 0 (S <= F x T unless clocks disagree by a second)."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

PERCENT = Decimal("0.01")


def return_percent(equity: Decimal, starting_capital: Decimal, topped_up: Decimal = Decimal("0.00"),
                   topped_up_cent_seconds: int = 0, elapsed_seconds: int = 0) -> Decimal:
    """The return in percent, rounded half-even to 0.01 (see the module docstring)."""
    pnl = equity - starting_capital - topped_up
    if topped_up and elapsed_seconds > 0:
        # sum(F_i x (T - t_i)) / T, in cents: (sum(F_i) x T - sum(F_i x t_i)) / T
        weighted_cents = (Decimal(int(topped_up * 100)) * elapsed_seconds - topped_up_cent_seconds) / elapsed_seconds
        capital = starting_capital + weighted_cents / 100
    else:
        capital = starting_capital + topped_up
    return (pnl * 100 / capital).quantize(PERCENT, rounding=ROUND_HALF_EVEN)


def top_up_cent_seconds(top_up: Decimal, seconds_since_start: int) -> int:
    """What a rebuy adds to ``topped_up_cent_seconds``."""
    return int(top_up * 100) * max(0, seconds_since_start)


def cents_of(amount: Decimal) -> int:
    """Whole cents of a money amount (as ``return_percent`` counts the top-ups)."""
    return int(amount * 100)


def ranking_cents(equity_cents: int, start_cents: int, topped_up_cents: int = 0, topped_up_cent_seconds: int = 0,
                  elapsed_seconds: int = 0) -> int:
    """The ranking score of an account in cents (see the module docstring): the equity
    without top-ups, C x (1 + time-weighted return), floored, with them."""
    if not topped_up_cents:
        return equity_cents
    pnl = equity_cents - start_cents - topped_up_cents
    if elapsed_seconds > 0:
        period = elapsed_seconds
        weighted = max(0, topped_up_cents * elapsed_seconds - topped_up_cent_seconds)  # F x T - S
    else:
        period, weighted = 1, topped_up_cents
    return start_cents + (start_cents * pnl * period) // (start_cents * period + weighted)
