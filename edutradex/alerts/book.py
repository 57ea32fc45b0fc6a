"""The rules of a price alert, and its entry in the engine's trigger book.

An alert watches the mid price of one market (the "Price" every page shows). What it waits
for next is its ``watching`` condition:

=========  ============================  ===================================================
watching   holds when                    book entry (competitions/triggers.py)
=========  ============================  ===================================================
``>=``     mid >= level                  at_or_above level
``<=``     mid <= level                  at_or_below level
``>``      mid >  level (strictly)       at_or_above level; a tick AT the level is put back
``<``      mid <  level (strictly)       at_or_below level; a tick AT the level is put back
=========  ============================  ===================================================

Each time the condition holds at a tick, the alert moves to the opposite condition
(``NEXT``) and, if that crossing is one it reports (``reports``), it fires:

- ABOVE: fires at ``>=``. Once: done. Every time: then waits, silently, for the price to go
  back strictly below the level (``<``: the re-arm), and fires again at the next ``>=``.
- BELOW: the mirror (fires at ``<=``, re-arms at ``>``).
- CROSSING: starts from the side the price is on when it is set (below the level: ``>=``;
  above: ``<=``; exactly at it is refused) and every change of side fires: below -> at or
  above -> below... (or above -> at or below -> above...). Once: the first crossing only.

So an "every time" alert fires again only after the price has gone back across the level,
never twice while the price stays beyond (or sits on) it.

The engine keeps every ACTIVE alert in a ``TriggerBook`` of its own and hands it each tick's
mid as both its bid and its ask; every alert rests on the book's bid side, so a tick that
crosses nothing costs two comparisons with the ends of its symbol's lists.
"""

from __future__ import annotations

from decimal import Decimal

from ..competitions.triggers import Trigger
from .models import AlertKind

NEXT = {">=": "<", "<": ">=", "<=": ">", ">": "<="}
STRICT = frozenset({">", "<"})
UP = frozenset({">=", ">"})


def first_watch(kind: str, mid: Decimal, level: Decimal) -> str | None:
    """The condition a new alert waits for, given the price now; None if it already holds
    (the alert would fire at once: the service refuses it and says so)."""
    if kind == AlertKind.ABOVE:
        return ">=" if mid < level else None
    if kind == AlertKind.BELOW:
        return "<=" if mid > level else None
    if mid == level:
        return None
    return ">=" if mid < level else "<="


def reports(kind: str, watching: str) -> bool:
    """Whether meeting `watching` fires the alert (else it is an every-time alert's re-arm)."""
    return kind == AlertKind.CROSSING or watching in (">=", "<=")


def holds(watching: str, mid: Decimal, level: Decimal) -> bool:
    if watching == ">=":
        return mid >= level
    if watching == "<=":
        return mid <= level
    if watching == ">":
        return mid > level
    return mid < level


def alert_trigger(alert_id: int, symbol: str, watching: str, level: Decimal) -> Trigger:
    return Trigger(alert_id, symbol, "bid", "at_or_above" if watching in UP else "at_or_below", level)
