"""Trigger book (issue #12): per-tick cost of TriggerBook.pop_crossed when the tick crosses
nothing, with 100,000 resting triggers over 10 symbols and with 1,000, on the same ticks
(Decimal prices, as the engine passes them). Target: p99 <= 50 us at 100,000, and within 2x
of the 1,000 figure (flat in N). For the ratio, a naive loop over every resting trigger (what
a scan-every-order engine does) on the first NAIVE_TICKS of the same ticks. The two books
take each tick in turn, so the machine's pauses land on both alike; a plain Python loop of
about the same length, timed the same way, shows how much of the p99 is the machine itself.

Levels sit 0.2 % to 5 % away from each symbol's starting price, on the side where they wait
(buy limits and long SLs below, buy stops and long TPs above...); the ticks random-walk within
0.1 % of it, so none fires (checked). Pure Python, no servers.

    .venv/bin/python -m bench.cfd_triggers [triggers] [ticks] [naive ticks]
"""

from __future__ import annotations

import gc
import random
import sys
import time
from decimal import Decimal

from edutradex.competitions.triggers import Trigger, TriggerBook, order_trigger, sl_trigger, tp_trigger

TRIGGERS, TICKS, NAIVE_TICKS = (int(a) for a in (sys.argv[1:] + ["100000", "20000", "200"][len(sys.argv[1:]):]))
SMALL = 1_000
TARGET_P99_US = 50.0
# symbol -> (starting mid, decimal places, spread)
MARKETS = {
    "EURUSD": ("1.08500", 5, "0.00010"), "GBPUSD": ("1.27000", 5, "0.00015"), "USDJPY": ("150.000", 3, "0.015"),
    "AUDUSD": ("0.66000", 5, "0.00012"), "USDCAD": ("1.36000", 5, "0.00015"), "USDCHF": ("0.88000", 5, "0.00015"),
    "XAUUSD": ("2000.00", 2, "0.50"), "OTC_EURUSD": ("1.08500", 5, "0.00010"), "VOL10": ("6500.00", 2, "0.20"),
    "VOL100": ("1250.00", 2, "0.10"),
}

# each kind of trigger, and on which side of the price it waits
KINDS = [
    (order_trigger, ("BUY", "LIMIT"), "below"), (order_trigger, ("SELL", "LIMIT"), "above"),
    (order_trigger, ("BUY", "STOP"), "above"), (order_trigger, ("SELL", "STOP"), "below"),
    (sl_trigger, ("BUY",), "below"), (tp_trigger, ("BUY",), "above"),
    (sl_trigger, ("SELL",), "above"), (tp_trigger, ("SELL",), "below"),
]


def resting_triggers(count: int, rng: random.Random) -> list[Trigger]:
    """`count` triggers spread evenly over the symbols and the eight kinds, each 0.2-5 % away
    from the price on its waiting side."""
    made = []
    symbols = list(MARKETS)
    for n in range(count):
        symbol = symbols[n % len(symbols)]
        mid, places, _ = MARKETS[symbol]
        mid = Decimal(mid)
        away = Decimal(rng.uniform(0.002, 0.05))
        below = (mid * (1 - away)).quantize(Decimal(1).scaleb(-places))
        above = (mid * (1 + away)).quantize(Decimal(1).scaleb(-places))
        make, args, waits = KINDS[(n // len(symbols)) % len(KINDS)]
        made.append(make(n, symbol, *args, below if waits == "below" else above))
    return made


def ticks(count: int, rng: random.Random) -> list[tuple[str, Decimal, Decimal]]:
    """Round-robin over the symbols, each a random walk kept within 0.1 % of its start."""
    walk = {symbol: Decimal(mid) for symbol, (mid, _, _) in MARKETS.items()}
    made = []
    symbols = list(MARKETS)
    for n in range(count):
        symbol = symbols[n % len(symbols)]
        start, places, spread = MARKETS[symbol]
        start, step = Decimal(start), Decimal(1).scaleb(-places)
        mid = walk[symbol] + step * rng.choice((-3, -2, -1, 0, 1, 2, 3))
        if abs(mid - start) > start / 1000:
            mid = start
        walk[symbol] = mid
        half = Decimal(spread) / 2
        made.append((symbol, mid - half, mid + half))
    return made


def percentiles(samples_ns: list[int]) -> tuple[float, float, float]:
    """p50, p99 and max in microseconds."""
    ordered = sorted(samples_ns)
    return (ordered[len(ordered) // 2] / 1000, ordered[int(len(ordered) * 0.99) - 1] / 1000, ordered[-1] / 1000)


def time_books(books: list[TriggerBook], tick_list) -> list[list[int]]:
    """Each tick on every book in turn (first one first, then the other), so a pause of the
    machine lands on the books alike and the ratio compares the books, not the moments."""
    samples: list[list[int]] = [[] for _ in books]
    clock = time.perf_counter_ns
    for n, (symbol, bid, ask) in enumerate(tick_list):
        for i in (range(len(books)) if n % 2 else reversed(range(len(books)))):
            t0 = clock()
            fired = books[i].pop_crossed(symbol, bid, ask)
            samples[i].append(clock() - t0)
            if fired:
                raise SystemExit(f"a benchmark tick fired {len(fired)} triggers: the levels are not where they "
                                 "should be")
    return samples


def time_reference(ticks_count: int) -> list[int]:
    """The machine's own noise: a plain 30-step Python loop (about as long as a tick that fires
    nothing), timed the same way."""
    samples = []
    clock = time.perf_counter_ns
    for _ in range(ticks_count):
        t0 = clock()
        total = 0
        for step in range(30):
            total += step
        samples.append(clock() - t0)
    return samples


def time_naive(triggers: list[Trigger], tick_list) -> list[int]:
    """Every resting trigger checked against every tick, as tight as a plain loop gets."""
    rows = [(t.symbol, t.side == "bid", t.when == "at_or_below", t.level) for t in triggers]
    samples = []
    clock = time.perf_counter_ns
    for symbol, bid, ask in tick_list:
        t0 = clock()
        fired = []
        for row_symbol, on_bid, below, level in rows:
            if row_symbol != symbol:
                continue
            price = bid if on_bid else ask
            if (price <= level) if below else (price >= level):
                fired.append(level)
        samples.append(clock() - t0)
        if fired:
            raise SystemExit("a benchmark tick fired in the naive loop")
    return samples


def main() -> None:
    rng = random.Random(12)
    tick_list = ticks(TICKS, rng)
    counts = (SMALL, TRIGGERS)
    books, built = [], []
    for count in counts:
        book = TriggerBook()
        triggers = resting_triggers(count, random.Random(count))
        t0 = time.perf_counter()
        for trigger in triggers:
            book.add(trigger)
        built.append(time.perf_counter() - t0)
        books.append(book)
    time_books(books, tick_list[:1000])  # warm up
    full_collections = gc.get_stats()[2]["collections"]
    samples = time_books(books, tick_list)
    full_collections = gc.get_stats()[2]["collections"] - full_collections
    results = {count: percentiles(runs) for count, runs in zip(counts, samples, strict=True)}
    rows = [(f"TriggerBook, {count:,} triggers", TICKS, *results[count], f"built in {seconds * 1000:.0f} ms")
            for count, seconds in zip(counts, built, strict=True)]
    assert [len(book) for book in books] == list(counts)
    big = resting_triggers(TRIGGERS, random.Random(TRIGGERS))
    naive = percentiles(time_naive(big, tick_list[:NAIVE_TICKS]))
    rows.append((f"naive loop, {TRIGGERS:,} triggers", NAIVE_TICKS, *naive, ""))
    rows.append(("reference: a 30-step Python loop", TICKS, *percentiles(time_reference(TICKS)),
                 "the clock and the machine, no book"))

    print(f"{TRIGGERS:,} / {SMALL:,} resting triggers over {len(MARKETS)} symbols; ticks that fire nothing")
    print(f"{'what':<34} {'ticks':>6} {'p50 us':>9} {'p99 us':>9} {'max us':>10}  note")
    for what, n, p50, p99, worst, note in rows:
        print(f"{what:<34} {n:>6} {p50:>9.1f} {p99:>9.1f} {worst:>10.1f}  {note}")
    big_p50, big_p99, _ = results[TRIGGERS]
    small_p50, small_p99, _ = results[SMALL]
    print(f"max: one-off pauses (the other processes on the machine; {full_collections} full garbage collections "
          "during the timed ticks)")
    print(f"{TRIGGERS:,} vs {SMALL:,}: p50 x{big_p50 / small_p50:.2f}, p99 x{big_p99 / small_p99:.2f}; "
          f"naive / TriggerBook at {TRIGGERS:,}: p50 x{naive[0] / big_p50:,.0f}")
    ok = big_p99 <= TARGET_P99_US and big_p99 <= 2 * small_p99
    print(f"{'PASS' if ok else 'FAIL'}: target p99 <= {TARGET_P99_US:.0f} us at {TRIGGERS:,} triggers "
          f"and within 2x of {SMALL:,}")


if __name__ == "__main__":
    main()
