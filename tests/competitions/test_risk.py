"""The per-tick risk pass: hand-computed MT5-style examples (EUR/USD long, USD/JPY short
converted at the rate, gold hedged), the margin-call / stop-out / negative lists at and around
their boundaries, and a tick visiting only the accounts that hold its symbol."""

import random
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edutradex.competitions.risk import RiskBook

approx = pytest.approx


def book_with(account_id=1, *, cash, used_margin, stop_out=50, margin_call=100):
    book = RiskBook()
    book.set_account(account_id, cash=cash, used_margin=used_margin, stop_out_percent=stop_out,
                     margin_call_percent=margin_call)
    return book


def test_eurusd_long_is_valued_at_the_bid():
    # 1 lot EUR/USD (100,000 units) bought at the ask 1.08500, leverage 1:30:
    # margin = 100,000 x 1.085 / 30 = 3,616.67 USD
    book = book_with(cash=10_000, used_margin=3_616.67)
    book.set_exposure(1, "EURUSD", long_units=100_000, long_cost=108_500, short_units=0, short_cost=0)
    assert book.equity(1) == 10_000  # valued at cost until its first tick
    result = book.on_tick("EURUSD", bid=1.08300, ask=1.08320)
    # P&L = 100,000 x 1.08300 - 108,500 = -200 USD (the ask plays no part in a long)
    assert book.unrealised_pnl(1, "EURUSD") == approx(-200)
    assert book.equity(1) == approx(9_800)
    assert book.margin_level(1) == approx(9_800 / 3_616.67 * 100)  # 270.97 %
    assert book.free_margin(1) == approx(9_800 - 3_616.67)
    assert (result.stop_out, result.margin_call, result.negative, result.visited) == ([], [], [], 1)


def test_usdjpy_short_is_valued_at_the_ask_and_converted_at_the_rate():
    # 0.5 lot USD/JPY (50,000 units) sold at the bid 150.000: short cost 7,500,000 JPY;
    # margin = 50,000 USD / 30 = 1,666.67 USD
    book = book_with(cash=10_000, used_margin=1_666.67)
    book.set_exposure(1, "USDJPY", long_units=0, long_cost=0, short_units=50_000, short_cost=7_500_000)
    book.on_tick("USDJPY", bid=150.980, ask=151.000, usd_rate=151.000)
    # P&L = 7,500,000 - 50,000 x 151.000 = -50,000 JPY = -50,000 / 151 = -331.13 USD
    assert book.unrealised_pnl(1, "USDJPY") == approx(-50_000 / 151)
    assert book.equity(1) == approx(10_000 - 331.125827815)
    assert book.margin_level(1) == approx((10_000 - 50_000 / 151) / 1_666.67 * 100)


def test_gold_long_and_short_hedged_in_one_account():
    # 2 lots gold (200 oz) bought at 2,000.00 and 1 lot (100 oz) sold at 2,010.00
    book = book_with(cash=50_000, used_margin=6_000)
    book.set_exposure(1, "XAUUSD", long_units=200, long_cost=400_000, short_units=100, short_cost=201_000)
    book.on_tick("XAUUSD", bid=1_990.00, ask=1_990.50)
    # long: 200 x 1,990.00 - 400,000 = -2,000; short: 201,000 - 100 x 1,990.50 = +1,950
    assert book.unrealised_pnl(1, "XAUUSD") == approx(-50)
    assert book.equity(1) == approx(49_950)


def test_the_engine_may_pass_its_decimals_as_they_are():
    book = RiskBook()
    book.set_account(1, cash=Decimal("10000.00"), used_margin=Decimal("3616.67"), stop_out_percent=Decimal("50"),
                     margin_call_percent=Decimal("100"))
    book.set_exposure(1, "EURUSD", long_units=Decimal("100000"), long_cost=Decimal("108500.00000"),
                      short_units=Decimal("0"), short_cost=Decimal("0"))
    result = book.on_tick("EURUSD", Decimal("1.08300"), Decimal("1.08320"), Decimal("1"))
    assert result.visited == 1 and book.equity(1) == approx(9_800) and isinstance(book.equity(1), float)


def test_equity_sums_every_symbol_and_a_tick_recomputes_only_its_own():
    book = book_with(cash=10_000, used_margin=2_000)
    book.set_exposure(1, "EURUSD", long_units=100_000, long_cost=108_500, short_units=0, short_cost=0)
    book.set_exposure(1, "XAUUSD", long_units=100, long_cost=200_000, short_units=0, short_cost=0)
    book.on_tick("EURUSD", bid=1.08600, ask=1.08620)  # +100
    book.on_tick("XAUUSD", bid=1_995.00, ask=1_995.50)  # -500
    assert book.equity(1) == approx(9_600)
    book.on_tick("EURUSD", bid=1.08700, ask=1.08720)  # +200 now; gold's -500 kept from its last tick
    assert book.equity(1) == approx(9_700)
    # a position change re-values the symbol at its latest tick at once: half the gold closed
    book.set_exposure(1, "XAUUSD", long_units=50, long_cost=100_000, short_units=0, short_cost=0)
    assert book.unrealised_pnl(1, "XAUUSD") == approx(-250) and book.equity(1) == approx(9_950)
    # all closed: zeros remove the symbol; its realised loss arrives as cash from the engine
    book.set_exposure(1, "XAUUSD", long_units=0, long_cost=0, short_units=0, short_cost=0)
    book.set_account(1, cash=9_750, used_margin=1_000, stop_out_percent=50, margin_call_percent=100)
    assert book.equity(1) == approx(9_950) and book.holders("XAUUSD") == set()
    assert book.on_tick("XAUUSD", bid=1.0, ask=1.0).visited == 0


def test_margin_call_stop_out_and_negative_each_account_on_its_most_severe_list():
    # cash 1,000; 1 lot EUR/USD long at 1.08500, leverage 1:100: margin 1,085
    def account(book, account_id):
        book.set_account(account_id, cash=1_000, used_margin=1_085, stop_out_percent=50, margin_call_percent=100)
        book.set_exposure(account_id, "EURUSD", long_units=100_000, long_cost=108_500, short_units=0, short_cost=0)

    book = RiskBook()
    account(book, "a")
    cases = [
        (1.08600, [], [], []),  # +100: equity 1,100, level 101.4 %
        (1.08500, [], ["a"], []),  # 0: equity 1,000, level 92.2 % < 100: margin call
        (1.08200, [], ["a"], []),  # -300: equity 700, level 64.5 %
        (1.08000, ["a"], [], []),  # -500: equity 500, level 46.1 % < 50: stop-out
        (1.07000, [], [], ["a"]),  # -1,500: equity -500: negative (not also listed as stop-out)
        (1.08600, [], [], []),  # back up
    ]
    for bid, stop_out, margin_call, negative in cases:
        result = book.on_tick("EURUSD", bid=bid, ask=bid + 0.0002)
        assert (result.stop_out, result.margin_call, result.negative) == (stop_out, margin_call, negative), bid


def test_the_levels_are_strict_and_exact_at_the_boundary():
    # 100 units at 10.00: margin 1,000, cash 1,000 (values exact in binary floating point)
    book = book_with(cash=1_000, used_margin=1_000, stop_out=50, margin_call=100)
    book.set_exposure(1, "IDX", long_units=100, long_cost=1_000, short_units=0, short_cost=0)
    result = book.on_tick("IDX", bid=10.0, ask=10.5)
    assert book.margin_level(1) == 100.0 and (result.margin_call, result.stop_out) == ([], [])
    result = book.on_tick("IDX", bid=5.0, ask=5.5)  # equity 500: level exactly 50 is a margin call, not a stop-out
    assert book.margin_level(1) == 50.0 and (result.margin_call, result.stop_out) == ([1], [])
    result = book.on_tick("IDX", bid=4.99, ask=5.49)
    assert book.margin_level(1) < 50 and (result.margin_call, result.stop_out) == ([], [1])
    result = book.on_tick("IDX", bid=0.0, ask=0.5)  # equity exactly 0 is not negative
    assert book.equity(1) == 0 and (result.stop_out, result.negative) == ([1], [])


def test_no_used_margin_has_no_level_and_is_never_stopped_out():
    book = book_with(cash=500, used_margin=0)
    assert book.margin_level(1) is None
    book.set_exposure(1, "IDX", long_units=1, long_cost=100, short_units=0, short_cost=0)
    result = book.on_tick("IDX", bid=50, ask=51)
    assert book.equity(1) == 450 and (result.stop_out, result.margin_call, result.negative) == ([], [], [])
    result = book.on_tick("IDX", bid=-1000, ask=-999)  # equity below zero is still flagged
    assert result.negative == [1]


def test_a_tick_visits_only_the_accounts_that_hold_its_symbol():
    book = RiskBook()
    for account_id in range(10):
        book.set_account(account_id, cash=1_000, used_margin=1_000, stop_out_percent=50, margin_call_percent=100)
    for account_id in (0, 3, 7):
        book.set_exposure(account_id, "EURUSD", long_units=100_000, long_cost=108_500, short_units=0, short_cost=0)
    for account_id in range(10):  # everyone holds gold, far under water at its last tick
        book.set_exposure(account_id, "XAUUSD", long_units=100, long_cost=200_000, short_units=0, short_cost=0)
    gold = book.on_tick("XAUUSD", bid=1_996.0, ask=1_996.5)  # -400 each: equity 600, level 60 %
    assert gold.visited == 10 and gold.margin_call == list(range(10))

    result = book.on_tick("EURUSD", bid=1.08000, ask=1.08020)  # -500 more for the three holders
    assert result.visited == 3 and book.holders("EURUSD") == {0, 3, 7}
    # the others are in margin call from gold, but this tick does not visit (or list) them
    assert result.stop_out == [0, 3, 7] and result.margin_call == [] and result.negative == []
    assert book.equity(1) == approx(600) and book.unrealised_pnl(1, "EURUSD") == 0
    assert book.on_tick("GBPUSD", bid=1.2, ask=1.2).visited == 0

    book.drop_account(3)
    assert 3 not in book and len(book) == 9 and book.on_tick("EURUSD", bid=1.08, ask=1.08).visited == 2
    book.drop_account(3)  # twice is harmless
    with pytest.raises(KeyError, match="set_account"):
        book.set_exposure(3, "EURUSD", long_units=1, long_cost=1, short_units=0, short_cost=0)


def test_setting_the_account_rebuilds_the_running_sum_so_float_drift_does_not_build_up():
    # a big EUR/USD position and a tiny index one: adding and taking back their terms tick
    # after tick leaves rounding in the running sum
    rng = random.Random(5)
    book = book_with(cash=10_000, used_margin=1_000)
    book.set_exposure(1, "EURUSD", long_units=1_234_567, long_cost=1_339_505.76, short_units=0, short_cost=0)
    book.set_exposure(1, "IDX", long_units=0.3, long_cost=0, short_units=0, short_cost=0)
    for _ in range(5_000):
        book.on_tick("EURUSD", bid=1.085 + rng.random() / 10, ask=1.0852 + rng.random() / 10)
        book.on_tick("IDX", bid=rng.random() / 7, ask=1.0)
    exact = 10_000 + (book.unrealised_pnl(1, "EURUSD") + book.unrealised_pnl(1, "IDX"))
    assert book.equity(1) != exact and book.equity(1) == approx(exact, abs=1e-6)  # a few ulps off
    book.set_account(1, cash=10_000, used_margin=1_000, stop_out_percent=50, margin_call_percent=100)
    assert book.equity(1) == exact


# ---- property: the book agrees with recomputing every account from scratch ----------------
# Small integers and a rate of 1 or 2 keep every float exact, so the comparison can be exact.

accounts = st.integers(0, 4)
symbols = st.sampled_from(["A", "B", "C"])
small = st.integers(0, 50).map(float)
operations = st.lists(st.one_of(
    st.tuples(st.just("account"), accounts, small, st.integers(0, 40).map(float)),
    st.tuples(st.just("exposure"), accounts, symbols, small, small, small, small),
    st.tuples(st.just("drop"), accounts),
    st.tuples(st.just("tick"), symbols, small, st.integers(0, 3).map(float), st.sampled_from([1.0, 2.0])),
), max_size=60)


@settings(max_examples=200, deadline=None)
@given(operations)
def test_on_tick_matches_recomputing_every_account(ops):
    book = RiskBook()
    cash: dict = {}  # account -> (cash, used margin)
    held: dict = {}  # (account, symbol) -> (long units, long cost, short units, short cost)
    last: dict = {}  # symbol -> (bid, ask, rate)

    def pnl(account_id, symbol):
        if symbol not in last or (account_id, symbol) not in held:
            return 0.0
        bid, ask, rate = last[symbol]
        lu, lc, su, sc = held[account_id, symbol]
        return (lu * bid - lc + sc - su * ask) / rate

    def equity(account_id):
        return cash[account_id][0] + sum(pnl(a, s) for a, s in held if a == account_id)

    for op, *args in ops:
        if op == "account":
            account_id, account_cash, used = args
            cash[account_id] = (account_cash, used)
            book.set_account(account_id, cash=account_cash, used_margin=used, stop_out_percent=50,
                             margin_call_percent=100)
        elif op == "exposure":
            account_id, symbol, *amounts = args
            if account_id not in cash:
                continue
            if any(amounts):
                held[account_id, symbol] = tuple(amounts)
            else:
                held.pop((account_id, symbol), None)
            book.set_exposure(account_id, symbol, long_units=amounts[0], long_cost=amounts[1],
                              short_units=amounts[2], short_cost=amounts[3])
        elif op == "drop":
            (account_id,) = args
            cash.pop(account_id, None)
            held = {k: v for k, v in held.items() if k[0] != account_id}
            book.drop_account(account_id)
        else:
            symbol, bid, spread, rate = args
            last[symbol] = (bid, bid + spread, rate)
            holders = sorted(a for a, s in held if s == symbol)
            result = book.on_tick(symbol, bid, bid + spread, rate)
            assert result.visited == len(holders)
            expected = {"negative": [], "stop_out": [], "margin_call": []}
            for a in holders:
                e, used = equity(a), cash[a][1]
                if e < 0:
                    expected["negative"].append(a)
                elif used and e / used * 100 < 50:
                    expected["stop_out"].append(a)
                elif used and e / used * 100 < 100:
                    expected["margin_call"].append(a)
            assert {k: sorted(getattr(result, k)) for k in expected} == expected
        for account_id in cash:
            assert book.equity(account_id) == equity(account_id)
            used = cash[account_id][1]
            assert book.margin_level(account_id) == (equity(account_id) / used * 100 if used else None)


def test_the_rule_set_floor_names_an_account_below_it_independently_of_the_margin_lists():
    # 1 lot EUR/USD long at 1.08500, margin 100 (level far above the margin call): equity
    # 10,000 + (bid - 1.085) x 100,000; the engine set a loss floor of 9,800
    book = book_with(cash=10_000, used_margin=100)
    book.set_exposure(1, "EURUSD", long_units=100_000, long_cost=108_500, short_units=0, short_cost=0)
    book.set_floor(1, 9_800)
    at_floor = book.on_tick("EURUSD", bid=1.08300, ask=1.08320)  # equity 9,800: at the floor is no breach
    assert (at_floor.floor, at_floor.margin_call, at_floor.stop_out) == ([], [], [])
    below = book.on_tick("EURUSD", bid=1.08299, ask=1.08319)  # 9,799
    assert (below.floor, below.margin_call, below.stop_out, below.negative) == ([1], [], [], [])
    # the floor survives a new account figure (set_account after a fill) and can be lifted
    book.set_account(1, cash=10_000, used_margin=100, stop_out_percent=50, margin_call_percent=100)
    assert book.on_tick("EURUSD", bid=1.08299, ask=1.08319).floor == [1]
    book.set_floor(1, None)
    assert book.on_tick("EURUSD", bid=1.07000, ask=1.07020).floor == []
    # an account in the margin-call zone and below its floor is on both lists
    book.set_floor(1, 9_800)
    gap = book.on_tick("EURUSD", bid=0.98570, ask=0.98590)  # equity 70: margin level 70 %
    assert gap.floor == [1] and gap.margin_call == [1] and gap.stop_out == []
