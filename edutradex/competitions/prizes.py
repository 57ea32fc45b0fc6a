"""How a prize pool is split, to the cent (pure arithmetic; settlement.py moves the credits).

The rules, as shown on the competition page:
- the platform fee is the pool x the fee %, rounded half-even to cents; the net pool is
  the rest (raised to the guaranteed pool, if there is one and entries fell short);
- each rank's prize is the net pool x that rank's %, rounded DOWN to cents;
- participants with equal final equity share the rank and split the prizes of the ranks
  they occupy equally, rounded down (three tied for 2nd split the prizes of 2nd, 3rd, 4th);
- only ranked participants win: disqualified ones, and (if the competition says so) those
  who made no trade, are not ranked and the next ones move up;
- every cent not paid out (rounding, ranks nobody reached, percentages summing to less
  than 100) goes to platform revenue, so the pool ends at exactly 0.00.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Standing:
    """One ranked participant: rank 1 is the best; equal equity means an equal rank."""

    participant_id: int
    user_id: int
    rank: int


@dataclass
class Split:
    pool: Decimal
    fee: Decimal
    net_pool: Decimal  # what the prize percentages apply to (guarantee included)
    topup: Decimal  # moved from platform revenue into the pool before paying
    prizes: dict[int, Decimal] = field(default_factory=dict)  # participant id -> prize (> 0 only)
    leftover: Decimal = ZERO  # pool -> platform revenue after the prizes

    @property
    def paid(self) -> Decimal:
        return sum(self.prizes.values(), ZERO)


def rank_prizes(net_pool: Decimal, table: Sequence[Decimal]) -> list[Decimal]:
    """The prize of each rank in the table, rounded down to cents."""
    return [(net_pool * Decimal(percent) / 100).quantize(CENT, rounding=ROUND_DOWN) for percent in table]


def split_pool(pool: Decimal, fee_percent: Decimal, table: Sequence[Decimal], standings: Sequence[Standing],
               guaranteed: Decimal = ZERO) -> Split:
    fee = (pool * Decimal(fee_percent) / 100).quantize(CENT, rounding=ROUND_HALF_EVEN)
    net = pool - fee
    net_for_prizes = max(net, guaranteed)
    per_rank = rank_prizes(net_for_prizes, table)
    by_rank: dict[int, list[Standing]] = {}
    for standing in standings:
        by_rank.setdefault(standing.rank, []).append(standing)
    prizes: dict[int, Decimal] = {}
    for rank, tied in by_rank.items():
        occupied = per_rank[rank - 1:rank - 1 + len(tied)]  # ranks beyond the table pay nothing
        share = (sum(occupied, ZERO) / len(tied)).quantize(CENT, rounding=ROUND_DOWN)
        if share > 0:
            for standing in tied:
                prizes[standing.participant_id] = share
    paid = sum(prizes.values(), ZERO)
    # Top up only what the prizes need beyond the net pool: the platform never moves
    # credits into the pool only to take them back as leftover.
    topup = max(paid - net, ZERO)
    leftover = net + topup - paid
    return Split(pool=pool, fee=fee, net_pool=net_for_prizes, topup=topup, prizes=prizes, leftover=leftover)
