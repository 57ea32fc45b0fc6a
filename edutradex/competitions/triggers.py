"""Trigger books: the CFD engine's resting price conditions, kept in memory and sorted by level.

A trigger watches one price of a symbol's ticks (the bid or the ask) and fires when that price
reaches its level: ``at_or_below`` fires when price <= level, ``at_or_above`` when price >= level
(equal fires). The book keeps one sorted list per (symbol, side, when), ordered by (level,
insertion sequence), so a tick looks only at its symbol's four lists and takes only the entries
it crosses: O(log n + k), never a scan of every resting trigger. A tick that crosses nothing
costs four comparisons with the ends of those lists.

What the engine puts in the book (the broker conventions of DESIGN.md: a long closes at the
bid, a short at the ask, so a long's SL/TP watch the bid and a short's the ask):

============  ======  ===========  ===============================================
Trigger       Side    When         Fires when
============  ======  ===========  ===============================================
buy limit     ask     at_or_below  ask <= limit
sell limit    bid     at_or_above  bid >= limit
buy stop      ask     at_or_above  ask >= stop
sell stop     bid     at_or_below  bid <= stop
long SL       bid     at_or_below  bid <= stop-loss
long TP       bid     at_or_above  bid >= take-profit
short SL      ask     at_or_above  ask >= stop-loss
short TP      ask     at_or_below  ask <= take-profit
============  ======  ===========  ===============================================

``order_trigger``, ``sl_trigger`` and ``tp_trigger`` build these rows, keyed ``("order", id)``,
``("sl", id)`` and ``("tp", id)``. The book only says which conditions a tick crossed; the price
a fill gets (the limit or better, a stop at the tick's price) and whether the order or position
is still open are the engine's business, checked in the database.

Order of the triggers a tick returns: by insertion, oldest first (a trigger replaced by ``add``
counts from its replacement), whatever the side or level, so the same book and ticks always give
the same sequence.

Not thread-safe: the engine owns its book and calls it from the feed loop only.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from itertools import count
from operator import itemgetter
from typing import Literal

from sortedcontainers import SortedList

Side = Literal["bid", "ask"]
When = Literal["at_or_below", "at_or_above"]

# Position of each (side, when) list in a symbol's four lists.
_SLOTS: dict[tuple[str, str], int] = {
    ("bid", "at_or_below"): 0,
    ("bid", "at_or_above"): 1,
    ("ask", "at_or_below"): 2,
    ("ask", "at_or_above"): 3,
}
_AFTER_EVERY_SEQ = math.inf  # (level, inf) sorts after every (level, seq) entry at that level
_by_seq = itemgetter(1)


@dataclass(frozen=True)
class Trigger:
    key: Hashable
    symbol: str
    side: Side
    when: When
    level: Decimal

    def __post_init__(self) -> None:
        if (self.side, self.when) not in _SLOTS:
            raise ValueError(f"trigger {self.key!r}: side must be bid or ask and when at_or_below or at_or_above, "
                             f"not {self.side!r}/{self.when!r}")
        if not isinstance(self.level, Decimal) or not self.level.is_finite():
            raise ValueError(f"trigger {self.key!r}: level must be a finite Decimal, not {self.level!r}")

    def fires_at(self, bid: Decimal, ask: Decimal) -> bool:
        """The condition itself, for one trigger (the book never calls it per trigger)."""
        price = bid if self.side == "bid" else ask
        return price <= self.level if self.when == "at_or_below" else price >= self.level


_Entry = tuple[Decimal, int, Trigger]  # (level, insertion seq, trigger): seq is unique, so triggers are never compared


class TriggerBook:
    """Every resting trigger of the engine, by symbol, side and condition, sorted by level."""

    def __init__(self) -> None:
        # symbol -> [bid at_or_below, bid at_or_above, ask at_or_below, ask at_or_above]
        self._books: dict[str, list[SortedList]] = {}
        self._entries: dict[Hashable, _Entry] = {}
        self._seq = count()

    def add(self, trigger: Trigger) -> None:
        """Rest a trigger; one with the same key is replaced (a modified SL, a moved limit)."""
        self.remove(trigger.key)
        entry = (trigger.level, next(self._seq), trigger)
        books = self._books.get(trigger.symbol)
        if books is None:
            books = self._books[trigger.symbol] = [SortedList(), SortedList(), SortedList(), SortedList()]
        books[_SLOTS[trigger.side, trigger.when]].add(entry)
        self._entries[trigger.key] = entry

    def remove(self, key: Hashable) -> Trigger | None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return None
        trigger = entry[2]
        books = self._books[trigger.symbol]
        books[_SLOTS[trigger.side, trigger.when]].remove(entry)
        if not any(books):
            del self._books[trigger.symbol]
        return trigger

    def get(self, key: Hashable) -> Trigger | None:
        entry = self._entries.get(key)
        return None if entry is None else entry[2]

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def __iter__(self) -> Iterator[Trigger]:
        """Every resting trigger, in no particular order (for the engine's reconciliation)."""
        return (entry[2] for entry in self._entries.values())

    def keys(self) -> set[Hashable]:
        return set(self._entries)

    def symbols(self) -> set[str]:
        """The symbols with at least one resting trigger."""
        return set(self._books)

    def clear(self) -> None:
        self._books.clear()
        self._entries.clear()

    def crossed(self, symbol: str, bid: Decimal, ask: Decimal) -> list[Trigger]:
        """The triggers this tick crosses, oldest first; they stay in the book."""
        books = self._books.get(symbol)
        if books is None:
            return []
        entries: list[_Entry] = []
        for book, start, stop in _crossed_runs(books, bid, ask):
            entries.extend(book[start:stop])
        entries.sort(key=_by_seq)
        return [entry[2] for entry in entries]

    def pop_crossed(self, symbol: str, bid: Decimal, ask: Decimal) -> list[Trigger]:
        """The triggers this tick crosses, oldest first, taken out of the book."""
        books = self._books.get(symbol)
        if books is None:
            return []
        runs = _crossed_runs(books, bid, ask)
        if not runs:
            return []
        entries: list[_Entry] = []
        for book, start, stop in runs:
            entries.extend(book[start:stop])
            del book[start:stop]
        entries.sort(key=_by_seq)
        index = self._entries
        for entry in entries:
            del index[entry[2].key]
        if not any(books):
            del self._books[symbol]
        return [entry[2] for entry in entries]


def _crossed_runs(books: list[SortedList], bid: Decimal, ask: Decimal) -> list[tuple[SortedList, int, int]]:
    """The index range each of a symbol's four lists has crossed: an at_or_below list fires its
    tail (every level >= price), an at_or_above list its head (every level <= price). A list
    whose nearest end is not crossed is passed over after one comparison."""
    runs = []
    bid_below, bid_above, ask_below, ask_above = books
    if bid_below and bid_below[-1][0] >= bid:
        runs.append((bid_below, bid_below.bisect_left((bid,)), len(bid_below)))
    if bid_above and bid_above[0][0] <= bid:
        runs.append((bid_above, 0, bid_above.bisect_right((bid, _AFTER_EVERY_SEQ))))
    if ask_below and ask_below[-1][0] >= ask:
        runs.append((ask_below, ask_below.bisect_left((ask,)), len(ask_below)))
    if ask_above and ask_above[0][0] <= ask:
        runs.append((ask_above, 0, ask_above.bisect_right((ask, _AFTER_EVERY_SEQ))))
    return runs


# (order side, order type) -> (watched side, condition); see the module's table.
_ORDER_RULES: dict[tuple[str, str], tuple[Side, When]] = {
    ("BUY", "LIMIT"): ("ask", "at_or_below"),
    ("SELL", "LIMIT"): ("bid", "at_or_above"),
    ("BUY", "STOP"): ("ask", "at_or_above"),
    ("SELL", "STOP"): ("bid", "at_or_below"),
}
# position side -> (watched side, condition): a long (BUY) closes at the bid, a short (SELL) at the ask.
_SL_RULES: dict[str, tuple[Side, When]] = {"BUY": ("bid", "at_or_below"), "SELL": ("ask", "at_or_above")}
_TP_RULES: dict[str, tuple[Side, When]] = {"BUY": ("bid", "at_or_above"), "SELL": ("ask", "at_or_below")}


def order_trigger(order_id: int, symbol: str, side: str, order_type: str, price: Decimal) -> Trigger:
    """The trigger of a pending order: side "BUY"/"SELL", order_type "LIMIT"/"STOP"."""
    rule = _ORDER_RULES.get((side, order_type))
    if rule is None:
        raise ValueError(f"order {order_id}: no trigger for a {side!r} {order_type!r} order")
    return Trigger(("order", order_id), symbol, *rule, price)


def sl_trigger(position_id: int, symbol: str, side: str, level: Decimal) -> Trigger:
    """The stop-loss of a position: side "BUY" (a long) or "SELL" (a short)."""
    return Trigger(("sl", position_id), symbol, *_position_rule(_SL_RULES, position_id, side), level)


def tp_trigger(position_id: int, symbol: str, side: str, level: Decimal) -> Trigger:
    """The take-profit of a position: side "BUY" (a long) or "SELL" (a short)."""
    return Trigger(("tp", position_id), symbol, *_position_rule(_TP_RULES, position_id, side), level)


def _position_rule(rules: dict[str, tuple[Side, When]], position_id: int, side: str) -> tuple[Side, When]:
    rule = rules.get(side)
    if rule is None:
        raise ValueError(f"position {position_id}: side must be BUY or SELL, not {side!r}")
    return rule
