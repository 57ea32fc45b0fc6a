"""The per-tick risk pass: which competition accounts a tick takes into margin call, stop-out
or below zero, visiting only the accounts that hold the ticking symbol.

The book is a SCREEN in floats, for speed: it names candidates. The engine re-checks each
candidate exactly, in Decimal, from the database (its positions, its cash) before it closes
anything, so float rounding can at worst put an account on a list one tick early or late at
the exact boundary, never close a position on its own.

Per account (a participant of a competition): cash, used margin, its stop-out and margin-call
levels (percent), and per symbol it holds the sums over its open positions:

- ``long_units`` = sum of lots x contract size of its longs, ``long_cost`` = sum of
  open price x units of its longs; ``short_units`` / ``short_cost`` the same for its shorts.

A symbol's unrealised P&L, in its quote currency, values longs at the bid and shorts at the
ask (what closing them would get)::

    pnl_quote = long_units * bid - long_cost + short_cost - short_units * ask
    pnl_usd   = pnl_quote / usd_rate   # 1 for a USD-quoted market; the USD_JPY price for JPY

    equity       = cash + sum of pnl_usd over the account's symbols
    margin level = equity / used_margin * 100   (None while used_margin is 0)

Each account keeps its last P&L per symbol and their sum, so a tick on S recomputes S's term
only. The sum is rebuilt from the terms whenever the engine sets the account or an exposure,
so float drift never builds up between position changes. A symbol's exposure set before any
of its ticks is valued at cost (P&L 0) until its first tick; after that, at its latest tick.

Each account a tick visits lands on at most one list, the most severe: ``negative`` (equity
< 0: negative-balance protection closes everything), else ``stop_out`` (level < stop-out
percent), else ``margin_call`` (level < margin-call percent). Independently, ``floor`` names
the accounts whose equity is below the floor the engine set for them (``set_floor``: the
rule set's loss floors, rules.py).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from decimal import Decimal

AccountId = Hashable
Amount = float | int | Decimal  # taken as float: the engine may pass its Decimals as they are


@dataclass
class RiskResult:
    stop_out: list[AccountId] = field(default_factory=list)
    margin_call: list[AccountId] = field(default_factory=list)
    negative: list[AccountId] = field(default_factory=list)
    floor: list[AccountId] = field(default_factory=list)  # equity below the rule set's floor
    visited: int = 0


class _Account:
    # The thresholds are in terms of open P&L, so the pass compares that sum directly: equity < x
    # <=> open_pnl < x - cash, and margin level < p <=> equity < used_margin * p / 100 (used
    # margin > 0). `alert_below` is the highest of the four: a healthy account costs one comparison.
    __slots__ = ("cash", "used_margin", "stop_out_percent", "margin_call_percent", "negative_below",
                 "stop_out_below", "margin_call_below", "floor", "floor_below", "alert_below", "open_pnl", "exposures")

    def __init__(self) -> None:
        self.exposures: dict[str, _Exposure] = {}
        self.open_pnl = 0.0
        self.floor = float("-inf")

    def set_alert(self) -> None:
        self.floor_below = self.floor - self.cash
        self.alert_below = max(self.negative_below, self.stop_out_below, self.margin_call_below, self.floor_below)


class _Exposure:
    __slots__ = ("account", "long_units", "short_units", "net_cost", "pnl")  # net_cost = short_cost - long_cost

    def __init__(self, account: _Account) -> None:
        self.account = account
        self.pnl = 0.0


class RiskBook:
    """Competition accounts and what they hold, indexed by symbol. Not thread-safe: the engine
    owns it and calls it from the feed loop."""

    def __init__(self) -> None:
        self._accounts: dict[AccountId, _Account] = {}
        self._holders: dict[str, dict[AccountId, _Exposure]] = {}  # symbol -> accounts holding it
        self._last_tick: dict[str, tuple[float, float, float]] = {}  # symbol -> (bid, ask, usd_rate)

    # ---- what the engine tells the book -------------------------------------------------

    def set_account(self, account_id: AccountId, *, cash: Amount, used_margin: Amount, stop_out_percent: Amount,
                    margin_call_percent: Amount) -> None:
        """Create or update an account (after a fill, a close, a deposit of starting capital)."""
        account = self._accounts.get(account_id)
        if account is None:
            account = self._accounts[account_id] = _Account()
        account.cash = cash = float(cash)
        account.used_margin = used_margin = float(used_margin)
        account.stop_out_percent = float(stop_out_percent)
        account.margin_call_percent = float(margin_call_percent)
        account.negative_below = -cash
        if used_margin > 0:
            account.stop_out_below = used_margin * account.stop_out_percent / 100 - cash
            account.margin_call_below = used_margin * account.margin_call_percent / 100 - cash
        else:
            account.stop_out_below = account.margin_call_below = float("-inf")
        account.set_alert()
        account.open_pnl = sum(exposure.pnl for exposure in account.exposures.values())

    def set_floor(self, account_id: AccountId, floor: Amount | None) -> None:
        """The equity below which a tick names the account on ``floor`` (None: no floor)."""
        account = self._accounts[account_id]
        account.floor = float("-inf") if floor is None else float(floor)
        account.set_alert()

    def set_exposure(self, account_id: AccountId, symbol: str, *, long_units: Amount, long_cost: Amount,
                     short_units: Amount, short_cost: Amount) -> None:
        """Replace what an account holds in a symbol (the sums over its open positions there);
        all four 0 removes the symbol from the account."""
        account = self._accounts.get(account_id)
        if account is None:
            raise KeyError(f"risk book: set_account({account_id!r}) before its exposure")
        holders = self._holders.get(symbol)
        if not (long_units or long_cost or short_units or short_cost):
            account.exposures.pop(symbol, None)
            if holders is not None:
                holders.pop(account_id, None)
                if not holders:
                    del self._holders[symbol]
        else:
            exposure = account.exposures.get(symbol)
            if exposure is None:
                exposure = account.exposures[symbol] = _Exposure(account)
                if holders is None:
                    holders = self._holders[symbol] = {}
                holders[account_id] = exposure
            exposure.long_units = float(long_units)
            exposure.short_units = float(short_units)
            exposure.net_cost = float(short_cost) - float(long_cost)
            last = self._last_tick.get(symbol)
            if last is None:
                exposure.pnl = 0.0
            else:
                bid, ask, usd_rate = last
                exposure.pnl = (exposure.long_units * bid - exposure.short_units * ask + exposure.net_cost) / usd_rate
        account.open_pnl = sum(exposure.pnl for exposure in account.exposures.values())

    def drop_account(self, account_id: AccountId) -> None:
        """Forget an account (its competition ended, the participant left)."""
        account = self._accounts.pop(account_id, None)
        if account is None:
            return
        for symbol in account.exposures:
            holders = self._holders[symbol]
            del holders[account_id]
            if not holders:
                del self._holders[symbol]

    # ---- the pass ---------------------------------------------------------------------------

    def on_tick(self, symbol: str, bid: Amount, ask: Amount, usd_rate: Amount = 1.0) -> RiskResult:
        """Re-value every account holding `symbol` at this tick and name the ones in trouble."""
        bid = float(bid)
        ask = float(ask)
        usd_rate = float(usd_rate)
        self._last_tick[symbol] = (bid, ask, usd_rate)
        result = RiskResult()
        holders = self._holders.get(symbol)
        if not holders:
            return result
        stop_out = result.stop_out
        margin_call = result.margin_call
        negative = result.negative
        floor = result.floor
        for account_id, exposure in holders.items():
            pnl = (exposure.long_units * bid - exposure.short_units * ask + exposure.net_cost) / usd_rate
            account = exposure.account
            open_pnl = account.open_pnl + pnl - exposure.pnl
            account.open_pnl = open_pnl
            exposure.pnl = pnl
            if open_pnl < account.alert_below:
                if open_pnl < account.floor_below:
                    floor.append(account_id)
                if open_pnl < account.negative_below:
                    negative.append(account_id)
                elif open_pnl < account.stop_out_below:
                    stop_out.append(account_id)
                elif open_pnl < account.margin_call_below:
                    margin_call.append(account_id)
        result.visited = len(holders)
        return result

    # ---- what the engine and the page read ----------------------------------------------------

    def equity(self, account_id: AccountId) -> float:
        account = self._accounts[account_id]
        return account.cash + account.open_pnl

    def margin_level(self, account_id: AccountId) -> float | None:
        account = self._accounts[account_id]
        if account.used_margin <= 0:
            return None
        return (account.cash + account.open_pnl) / account.used_margin * 100

    def free_margin(self, account_id: AccountId) -> float:
        account = self._accounts[account_id]
        return account.cash + account.open_pnl - account.used_margin

    def unrealised_pnl(self, account_id: AccountId, symbol: str) -> float:
        """The account's P&L in USD in one symbol at that symbol's latest tick (0 if none held)."""
        exposure = self._accounts[account_id].exposures.get(symbol)
        return 0.0 if exposure is None else exposure.pnl

    def holders(self, symbol: str) -> set[AccountId]:
        """The accounts a tick on `symbol` visits."""
        return set(self._holders.get(symbol, ()))

    def __contains__(self, account_id: AccountId) -> bool:
        return account_id in self._accounts

    def __len__(self) -> int:
        return len(self._accounts)
