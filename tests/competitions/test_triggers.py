"""Trigger books: every row of the engine's mapping, equality fires, gaps fire everything they
cross, remove/replace, and a property test against a naive scan of every trigger."""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edutradex.competitions.triggers import Trigger, TriggerBook, order_trigger, sl_trigger, tp_trigger

D = Decimal


def fired_keys(book, symbol, bid, ask):
    return [t.key for t in book.pop_crossed(symbol, D(bid), D(ask))]


# ---- the mapping, row by row: (trigger, a tick short of it, the tick exactly at it, one through it) ----
# EUR/USD with a 2-pip spread; each row's level is 1.08500.
MAPPING = [
    # buy limit: ask <= limit
    (order_trigger(1, "EURUSD", "BUY", "LIMIT", D("1.08500")), "ask", "at_or_below",
     ("1.08490", "1.08510"), ("1.08480", "1.08500"), ("1.08470", "1.08490")),
    # sell limit: bid >= limit
    (order_trigger(2, "EURUSD", "SELL", "LIMIT", D("1.08500")), "bid", "at_or_above",
     ("1.08490", "1.08510"), ("1.08500", "1.08520"), ("1.08510", "1.08530")),
    # buy stop: ask >= stop
    (order_trigger(3, "EURUSD", "BUY", "STOP", D("1.08500")), "ask", "at_or_above",
     ("1.08470", "1.08490"), ("1.08480", "1.08500"), ("1.08490", "1.08510")),
    # sell stop: bid <= stop
    (order_trigger(4, "EURUSD", "SELL", "STOP", D("1.08500")), "bid", "at_or_below",
     ("1.08510", "1.08530"), ("1.08500", "1.08520"), ("1.08490", "1.08510")),
    # long SL: bid <= SL
    (sl_trigger(5, "EURUSD", "BUY", D("1.08500")), "bid", "at_or_below",
     ("1.08510", "1.08530"), ("1.08500", "1.08520"), ("1.08490", "1.08510")),
    # long TP: bid >= TP
    (tp_trigger(6, "EURUSD", "BUY", D("1.08500")), "bid", "at_or_above",
     ("1.08490", "1.08510"), ("1.08500", "1.08520"), ("1.08510", "1.08530")),
    # short SL: ask >= SL
    (sl_trigger(7, "EURUSD", "SELL", D("1.08500")), "ask", "at_or_above",
     ("1.08470", "1.08490"), ("1.08480", "1.08500"), ("1.08490", "1.08510")),
    # short TP: ask <= TP
    (tp_trigger(8, "EURUSD", "SELL", D("1.08500")), "ask", "at_or_below",
     ("1.08490", "1.08510"), ("1.08480", "1.08500"), ("1.08470", "1.08490")),
]


@pytest.mark.parametrize(("trigger", "side", "when", "short_of", "at", "through"), MAPPING,
                         ids=["buy limit", "sell limit", "buy stop", "sell stop", "long SL", "long TP", "short SL",
                              "short TP"])
def test_each_mapping_row_watches_its_side_and_fires_at_equality(trigger, side, when, short_of, at, through):
    assert (trigger.side, trigger.when, trigger.level) == (side, when, D("1.08500"))
    for tick in (at, through):
        book = TriggerBook()
        book.add(trigger)
        assert fired_keys(book, "EURUSD", *short_of) == []
        assert trigger.key in book
        assert fired_keys(book, "EURUSD", *tick) == [trigger.key]
        assert trigger.key not in book and len(book) == 0
        assert fired_keys(book, "EURUSD", *tick) == []  # popped once, fires once


def test_the_other_side_of_the_quote_does_not_fire():
    """A long's SL watches the bid: an ask at the level (the spread) does not stop it out; a
    buy limit watches the ask: a bid at the limit does not fill it."""
    book = TriggerBook()
    book.add(sl_trigger(1, "EURUSD", "BUY", D("1.08500")))
    book.add(order_trigger(2, "EURUSD", "BUY", "LIMIT", D("1.08400")))
    assert fired_keys(book, "EURUSD", "1.08501", "1.08500") == []  # crossed quote: ask at the SL, bid above it
    assert fired_keys(book, "EURUSD", "1.08400", "1.08420") == [("sl", 1)]
    assert fired_keys(book, "EURUSD", "1.08380", "1.08400") == [("order", 2)]


def test_keys_are_kind_and_id_so_an_order_and_a_position_with_the_same_id_do_not_collide():
    assert order_trigger(7, "X", "BUY", "LIMIT", D("1")).key == ("order", 7)
    assert sl_trigger(7, "X", "BUY", D("1")).key == ("sl", 7)
    assert tp_trigger(7, "X", "BUY", D("2")).key == ("tp", 7)
    book = TriggerBook()
    for trigger in (order_trigger(7, "X", "BUY", "LIMIT", D("1")), sl_trigger(7, "X", "BUY", D("1")),
                    tp_trigger(7, "X", "BUY", D("2"))):
        book.add(trigger)
    assert len(book) == 3


def test_a_gap_fires_every_trigger_it_crosses_in_insertion_order_and_leaves_the_rest():
    book = TriggerBook()
    # sell stops / long SLs (bid at_or_below) spread under the price, added out of level order
    for n, level in enumerate(["1.0800", "1.0840", "1.0700", "1.0820", "1.0600"], start=1):
        book.add(sl_trigger(n, "EURUSD", "BUY", D(level)))
    book.add(tp_trigger(9, "EURUSD", "BUY", D("1.0900")))  # above the price: untouched by a fall
    assert fired_keys(book, "EURUSD", "1.0850", "1.0852") == []
    # the bid gaps from 1.0850 to 1.0750: everything from 1.0840 down to 1.0800 fires, in insertion order
    assert fired_keys(book, "EURUSD", "1.0750", "1.0752") == [("sl", 1), ("sl", 2), ("sl", 4)]
    assert book.keys() == {("sl", 3), ("sl", 5), ("tp", 9)}
    # a gap far through every level fires all that remain on that side
    assert fired_keys(book, "EURUSD", "0.5000", "0.5002") == [("sl", 3), ("sl", 5)]
    assert book.keys() == {("tp", 9)}


def test_one_tick_can_fire_on_all_four_lists_ordered_by_insertion():
    book = TriggerBook()
    book.add(order_trigger(1, "X", "BUY", "STOP", D("99")))  # ask at_or_above
    book.add(sl_trigger(2, "X", "BUY", D("101")))  # bid at_or_below
    book.add(order_trigger(3, "X", "BUY", "LIMIT", D("101")))  # ask at_or_below
    book.add(tp_trigger(4, "X", "BUY", D("99")))  # bid at_or_above
    assert [t.key for t in book.crossed("X", D("100"), D("100"))] == [("order", 1), ("sl", 2), ("order", 3), ("tp", 4)]
    assert len(book) == 4  # crossed() only peeks
    assert fired_keys(book, "X", "100", "100") == [("order", 1), ("sl", 2), ("order", 3), ("tp", 4)]
    assert len(book) == 0 and book.symbols() == set()


def test_equal_levels_fire_together_by_insertion():
    book = TriggerBook()
    for n in (5, 3, 8):
        book.add(sl_trigger(n, "X", "SELL", D("2.5")))  # ask at_or_above
    book.add(sl_trigger(1, "X", "SELL", D("2.6")))
    assert fired_keys(book, "X", "2.48", "2.50") == [("sl", 5), ("sl", 3), ("sl", 8)]
    assert book.keys() == {("sl", 1)}


def test_ticks_only_touch_their_own_symbol():
    book = TriggerBook()
    book.add(sl_trigger(1, "EURUSD", "BUY", D("1.08")))
    book.add(sl_trigger(2, "USDJPY", "BUY", D("150.00")))
    assert fired_keys(book, "EURUSD", "100", "100") == []  # a USD/JPY-sized price on EUR/USD's book
    assert fired_keys(book, "GOLD", "0", "0") == []  # a symbol with no book
    assert fired_keys(book, "USDJPY", "149.99", "150.01") == [("sl", 2)]
    assert book.symbols() == {"EURUSD"}


def test_remove_and_replace():
    book = TriggerBook()
    book.add(order_trigger(1, "X", "BUY", "LIMIT", D("100")))
    assert book.get(("order", 1)).level == D("100")
    # a modified limit replaces the old one: only the new level fires, and it is counted once
    book.add(order_trigger(1, "X", "BUY", "LIMIT", D("95")))
    assert len(book) == 1 and book.get(("order", 1)).level == D("95")
    assert fired_keys(book, "X", "98", "99") == []
    # a replacement can move to another side/condition (the pending buy limit turned into a buy stop, same id)
    book.add(order_trigger(1, "X", "BUY", "STOP", D("105")))
    assert fired_keys(book, "X", "90", "94") == []
    # a replacement counts as new for the order of what fires
    book.add(order_trigger(2, "X", "BUY", "STOP", D("104")))
    book.add(order_trigger(1, "X", "BUY", "STOP", D("105")))
    assert fired_keys(book, "X", "105", "106") == [("order", 2), ("order", 1)]

    book.add(sl_trigger(3, "X", "BUY", D("90")))
    removed = book.remove(("sl", 3))
    assert removed == sl_trigger(3, "X", "BUY", D("90"))
    assert book.remove(("sl", 3)) is None and book.get(("sl", 3)) is None and ("sl", 3) not in book
    assert fired_keys(book, "X", "1", "1") == []
    assert book.symbols() == set() and len(book) == 0

    book.add(sl_trigger(4, "X", "BUY", D("90")))
    book.add(sl_trigger(5, "Y", "BUY", D("90")))
    book.clear()
    assert len(book) == 0 and book.symbols() == set() and fired_keys(book, "X", "1", "1") == []


def test_bad_triggers_are_refused():
    with pytest.raises(ValueError, match="side must be bid or ask"):
        Trigger("k", "X", "mid", "at_or_below", D("1"))
    with pytest.raises(ValueError, match="when at_or_below or at_or_above"):
        Trigger("k", "X", "bid", "below", D("1"))
    for level in (D("NaN"), D("Infinity"), 1.5):
        with pytest.raises(ValueError, match="level must be a finite Decimal"):
            Trigger("k", "X", "bid", "at_or_below", level)
    with pytest.raises(ValueError, match="no trigger for a 'BUY' 'MARKET' order"):
        order_trigger(1, "X", "BUY", "MARKET", D("1"))
    with pytest.raises(ValueError, match="side must be BUY or SELL"):
        sl_trigger(1, "X", "LONG", D("1"))
    with pytest.raises(ValueError, match="side must be BUY or SELL"):
        tp_trigger(1, "X", "short", D("1"))


def _counted(op):
    def compare(self, other):
        CountedPrice.comparisons += 1
        return getattr(Decimal, op)(self, other)
    return compare


class CountedPrice(Decimal):
    """A tick price that counts the comparisons the book makes with it (a Decimal subclass, so
    Python asks it first whichever side of the comparison it is on)."""

    comparisons = 0
    __lt__, __le__, __gt__, __ge__, __eq__ = (_counted(op) for op in ("__lt__", "__le__", "__gt__", "__ge__", "__eq__"))
    __hash__ = Decimal.__hash__


def comparisons_for_tick(book, bid, ask):
    CountedPrice.comparisons = 0
    fired = book.pop_crossed("X", CountedPrice(bid), CountedPrice(ask))
    return len(fired), CountedPrice.comparisons


@pytest.mark.parametrize("resting", [1_000, 20_000])
def test_a_tick_compares_only_with_the_ends_and_what_it_crosses_never_every_trigger(resting):
    """A quarter of the triggers on each list: levels from 100.00 up by 0.01 below the price,
    from 300.00 up above it."""
    book = TriggerBook()
    for n in range(resting):
        offset = Decimal(n // 4) / 100
        kind = n % 4
        if kind == 0:
            book.add(sl_trigger(n, "X", "BUY", 100 + offset))  # bid at_or_below
        elif kind == 1:
            book.add(tp_trigger(n, "X", "BUY", 300 + offset))  # bid at_or_above
        elif kind == 2:
            book.add(order_trigger(n, "X", "BUY", "LIMIT", 100 + offset))  # ask at_or_below
        else:
            book.add(order_trigger(n, "X", "BUY", "STOP", 300 + offset))  # ask at_or_above
    # nothing crossed: one comparison with the nearest end of each list
    assert comparisons_for_tick(book, Decimal("250.00"), Decimal("250.02")) == (0, 4)
    # the bid falls to 0.04 under the highest long SL: 5 fire, found by bisection, not by a walk over the book
    highest = 100 + Decimal(resting // 4 - 1) / 100
    fired, comparisons = comparisons_for_tick(book, highest - Decimal("0.04"), Decimal("250.00"))
    assert fired == 5 and comparisons <= 4 + 60
    assert len(book) == resting - 5


# ---- property: the book agrees with a naive scan of every trigger -------------------------

SYMBOLS = ["A", "B"]
levels = st.integers(0, 8).map(lambda n: D(100) + D(n) / 10)  # few distinct levels: plenty of equal ones
triggers = st.builds(Trigger, key=st.integers(0, 9), symbol=st.sampled_from(SYMBOLS),
                     side=st.sampled_from(["bid", "ask"]), when=st.sampled_from(["at_or_below", "at_or_above"]),
                     level=levels)
ticks = st.tuples(st.sampled_from(SYMBOLS + ["C"]), levels, st.integers(0, 2).map(lambda n: D(n) / 10))  # bid, spread
operations = st.lists(st.one_of(st.tuples(st.just("add"), triggers),
                                st.tuples(st.just("remove"), st.integers(0, 9)),
                                st.tuples(st.just("tick"), ticks)), max_size=60)


@settings(max_examples=300, deadline=None)
@given(operations)
def test_pop_crossed_matches_a_naive_scan(ops):
    book = TriggerBook()
    naive: dict = {}  # key -> trigger; dicts keep insertion order, and a replacement is re-inserted at the end
    for op, arg in ops:
        if op == "add":
            naive.pop(arg.key, None)
            naive[arg.key] = arg
            book.add(arg)
        elif op == "remove":
            assert book.remove(arg) == naive.pop(arg, None)
        else:
            symbol, bid, spread = arg
            ask = bid + spread
            expected = [t for t in naive.values() if t.symbol == symbol and t.fires_at(bid, ask)]
            assert book.crossed(symbol, bid, ask) == expected
            assert book.pop_crossed(symbol, bid, ask) == expected
            for t in expected:
                del naive[t.key]
        assert len(book) == len(naive) and book.keys() == set(naive)
        assert book.symbols() == {t.symbol for t in naive.values()}
        assert all(book.get(k) == t for k, t in naive.items())
