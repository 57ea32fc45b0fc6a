"""A competition's rule set (issue #13): what each rule says, in Decimal, and what a breach does.

The rules (each off while its term is None):

- **max daily loss** (FTMO-style): equity must stay at or above the balance at the start of
  the UTC day minus X % of the starting capital. $100k start, $104k balance at midnight, 5 %:
  the floor is 99,000.00 all that day; equity 98,999.99 is a breach.
- **max total loss**: equity must stay at or above the starting capital minus X % of it. A
  rebuy's top-up counts as money paid in: it raises this floor by the top-up (and the day's
  base by the same amount), so a rebuy cannot buy back a breached loss limit.
- **min trading days**: distinct UTC days on which the trader opened a position (an OPEN
  fill; closes by the engine or the end do not count), judged at the end: below it the
  participant is not ranked for prizes (FLAG) or disqualified (DISQUALIFY).
- **max open positions** and **max lots per order**: refused when an order is placed, and
  again when a pending order triggers (it is REJECTED with the reason, not filled).

The daily-loss base is exact and restart-safe without any clock: every change of an account's
cash first calls ``roll_day`` with the time of the tick it happens at, which, on the first
change of a later UTC day, records the cash as it still is (the balance at that midnight, as
nothing changed it since) with that day. So while ``day_start_day`` names the current day,
``day_start_balance`` is the balance at its midnight; while it names an earlier day (or none)
the cash has not moved today and is itself that balance.

Breaches are recorded by the CFD engine (the price authority), which values the accounts on
every tick: ``enforce`` re-checks an account exactly at a tick, records each breached rule
once (unique per participant and rule: a replay of the same ticks records nothing new), and
on DISQUALIFY closes the account's positions at that tick, cancels its pending orders and
disqualifies it with a reason naming the rule and the tick (the leaderboard ranks only
participants who are not disqualified).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import case, func, select, update

from ..errors import DomainError
from ..extensions import db
from ..types import utcnow
from . import margin, positions
from .models import (
    Breach,
    BreachAction,
    CfdFill,
    CfdOrder,
    CfdPosition,
    CloseReason,
    Competition,
    CompetitionKind,
    OrderStatus,
    Participant,
    ParticipantStatus,
    PositionStatus,
    Rule,
)

DAY_MS = 86_400_000
RULE_NAMES = {Rule.DAILY_LOSS.value: "max daily loss", Rule.TOTAL_LOSS.value: "max total loss",
              Rule.MIN_TRADING_DAYS.value: "min trading days"}


class RuleRefusal(DomainError):
    """An order the rule set does not allow (max open positions, max lots per order)."""
    status_code = 409


def epoch_day(ts_ms: int) -> int:
    """The UTC day of a moment in ms since the epoch (days since 1970-01-01)."""
    return ts_ms // DAY_MS


@dataclass(frozen=True)
class RuleSet:
    starting_capital: Decimal
    max_daily_loss_percent: Decimal | None = None
    max_total_loss_percent: Decimal | None = None
    action: str = BreachAction.FLAG.value

    @classmethod
    def of(cls, competition) -> RuleSet | None:
        """The floors of a competition (a row or an ORM object); None when it has none."""
        if competition.max_daily_loss_percent is None and competition.max_total_loss_percent is None:
            return None
        return cls(competition.starting_capital, competition.max_daily_loss_percent,
                   competition.max_total_loss_percent, competition.breach_action or BreachAction.FLAG.value)


def day_base(cash: Decimal, day_start_balance: Decimal | None, day_start_day: int | None, day: int) -> Decimal:
    """The balance at the start of UTC day `day` (see the module docstring)."""
    if day_start_day == day and day_start_balance is not None:
        return day_start_balance
    return cash


def floors(rules: RuleSet, *, cash: Decimal, day_start_balance: Decimal | None, day_start_day: int | None,
           topped_up: Decimal, day: int) -> dict[str, Decimal]:
    """Rule -> the equity floor on UTC day `day`, to the cent."""
    capital = rules.starting_capital
    found = {}
    if rules.max_daily_loss_percent is not None:
        base = day_base(cash, day_start_balance, day_start_day, day)
        found[Rule.DAILY_LOSS.value] = margin.cents(base - capital * rules.max_daily_loss_percent / 100)
    if rules.max_total_loss_percent is not None:
        found[Rule.TOTAL_LOSS.value] = margin.cents(capital + topped_up - capital * rules.max_total_loss_percent / 100)
    return found


def breached(floors_: dict[str, Decimal], equity: Decimal) -> dict[str, Decimal]:
    """The floors `equity` is below (at the floor is no breach)."""
    return {rule: floor for rule, floor in floors_.items() if equity < floor}


def roll_day(participant: Participant, ts_ms: int) -> None:
    """Call before changing the cash of `participant` at a tick of time `ts_ms` (in the
    caller's transaction, the account locked)."""
    day = epoch_day(ts_ms)
    if participant.day_start_day is None or participant.day_start_day < day:
        participant.day_start_balance = participant.cash
        participant.day_start_day = day


def pay_in(participant_id: int, amount: Decimal, ts_ms: int) -> None:
    """A rebuy's top-up, before it resets the cash: the day's base rises by it (rolled to
    this day first), as if it had been there at midnight."""
    day = epoch_day(ts_ms)
    p = Participant
    rolled = case((p.day_start_day == day, p.day_start_balance), else_=p.cash)
    db.session.execute(update(p).where(p.id == participant_id)
                       .values(day_start_balance=rolled + amount, day_start_day=day)
                       .execution_options(synchronize_session=False))


# ---- orders -------------------------------------------------------------------------------

def order_refusal(competition, participant_id: int, lots: Decimal) -> str | None:
    """Why the rule set refuses an order of `lots` that would open one more position for
    this account now (None: allowed). The caller holds the account lock."""
    limit = competition.max_lots_per_order
    if limit is not None and lots > limit:
        return f"Max lots per order: this competition allows at most {limit.normalize():f} lots in one order."
    most = competition.max_open_positions
    if most is not None:
        held = db.session.scalar(select(func.count()).select_from(CfdPosition).where(
            CfdPosition.participant_id == participant_id, CfdPosition.status == PositionStatus.OPEN.value)) or 0
        if held >= most:
            return (f"Max open positions: this competition allows at most {most} open position"
                    f"{'s' if most != 1 else ''} at a time; close one first.")
    return None


def check_order(competition, participant_id: int, lots: Decimal) -> None:
    refusal = order_refusal(competition, participant_id, lots)
    if refusal is not None:
        raise RuleRefusal(refusal, field="lots")


def pending_fill_refusal(competition_id: int, participant_id: int, lots: Decimal) -> str | None:
    """``order_refusal`` for a pending order the engine is filling."""
    terms = db.session.execute(select(Competition.max_lots_per_order, Competition.max_open_positions)
                               .where(Competition.id == competition_id)).one()
    if terms.max_lots_per_order is None and terms.max_open_positions is None:
        return None
    return order_refusal(terms, participant_id, lots)


# ---- breaches -----------------------------------------------------------------------------

def record_breach(participant: Participant, rule: str, action: str, *, detail: str, tick_id: int | None = None,
                  tick_ts_ms: int | None = None, equity: Decimal | None = None,
                  floor: Decimal | None = None) -> bool:
    """Insert the breach once per (participant, rule); True if this call recorded it."""
    table = Breach.__table__
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    statement = dialect_insert(table).values(
        competition_id=participant.competition_id, participant_id=participant.id, user_id=participant.user_id,
        rule=rule, action=action, tick_id=tick_id, tick_ts_ms=tick_ts_ms, equity=equity, floor=floor,
        detail=detail[:255], created_at=utcnow())
    inserted = db.session.execute(statement.on_conflict_do_nothing(
        index_elements=[table.c.participant_id, table.c.rule]).returning(table.c.id)).scalar_one_or_none()
    return inserted is not None


def last_close(participant_id: int):
    """(competition_id, symbol, tick_id, tick_ts_ms, bid, ask) of the account's latest close, or None."""
    return db.session.execute(
        select(CfdFill.competition_id, CfdFill.symbol, CfdFill.tick_id, CfdFill.tick_ts_ms, CfdFill.bid, CfdFill.ask)
        .where(CfdFill.participant_id == participant_id, CfdFill.action == "CLOSE")
        .order_by(CfdFill.id.desc()).limit(1)).one_or_none()


def disqualify(participant_id: int, reason: str) -> bool:
    """The rule set's disqualification: the same fields as an admin's (service.disqualify),
    in the caller's transaction. False if already disqualified."""
    return db.session.execute(
        update(Participant).where(Participant.id == participant_id, Participant.disqualified.is_(False))
        .values(disqualified=True, disqualify_reason=reason[:500], disqualified_at=utcnow(), final_rank=None)
        .execution_options(synchronize_session=False)).rowcount == 1


@dataclass
class Outcome:
    breached: dict[str, Decimal] = field(default_factory=dict)  # every rule found breached (recorded now or before)
    recorded: list[str] = field(default_factory=list)  # recorded by this call
    closed: list[int] = field(default_factory=list)  # positions closed (DISQUALIFY)
    disqualified: bool = False
    equity: Decimal | None = None
    detail: str = ""


def enforce(participant_id: int, rules: RuleSet, tick, price_of: Callable[[str], positions.At | None]) -> Outcome:
    """The exact check of one account at a recorded tick (`tick`: id, ts_ms), in the caller's
    transaction (the competition held, see engine._hold): equity from the database, the
    positions opened at or before the tick valued at `price_of`; each breached floor recorded
    once; on DISQUALIFY (and a breach recorded now) every position closed at the tick, the
    pending orders cancelled and the participant disqualified. Nothing breached or nothing
    new: an Outcome without `recorded` (the caller rolls back)."""
    participant = positions.lock_account(participant_id)
    outcome = Outcome()
    if participant.disqualified or participant.status != ParticipantStatus.ACTIVE.value:
        return outcome
    held = [p for p in positions.open_positions(participant_id) if (p.open_tick_id or 0) <= tick.id]
    holdings = [positions.holding(p, price_of) for p in held]
    equity = margin.figures(participant.cash, holdings).equity
    outcome.equity = equity
    outcome.breached = breached(floors(rules, cash=participant.cash, day_start_balance=participant.day_start_balance,
                                       day_start_day=participant.day_start_day, topped_up=participant.topped_up,
                                       day=epoch_day(tick.ts_ms)), equity)
    for rule, floor in outcome.breached.items():
        detail = (f"{RULE_NAMES[rule]}: equity {equity:,.2f} < floor {floor:,.2f} at tick {tick.id}")
        if record_breach(participant, rule, rules.action, detail=detail, tick_id=tick.id, tick_ts_ms=tick.ts_ms,
                         equity=equity, floor=floor):
            outcome.recorded.append(rule)
            outcome.detail = outcome.detail or detail
    if not outcome.recorded or rules.action != BreachAction.DISQUALIFY.value:
        return outcome
    rule_text = f"rule breach ({outcome.detail})"
    for position in held:
        at = price_of(position.symbol) or positions.At(position.open_tick_id, tick.ts_ms, position.open_price,
                                                        position.open_price)
        if positions.close_position(position.id, at=at, reason=CloseReason.RULE_BREACH.value,
                                    rule=rule_text) is not None:
            outcome.closed.append(position.id)
    now = utcnow()
    db.session.execute(update(CfdOrder).where(CfdOrder.participant_id == participant_id,
                                              CfdOrder.status == OrderStatus.PENDING.value)
                       .values(status=OrderStatus.CANCELLED.value, done_at=now, updated_at=now,
                               status_reason=f"Cancelled: disqualified for a rule breach ({RULE_NAMES[outcome.recorded[0]]}).")
                       .execution_options(synchronize_session=False))
    db.session.flush()
    negative = Participant.cash < 0  # a gap past the floor and below 0: negative-balance protection
    db.session.execute(update(Participant).where(Participant.id == participant_id, negative)
                       .values(cash=margin.ZERO, equity=margin.ZERO).execution_options(synchronize_session=False))
    outcome.disqualified = disqualify(participant_id, f"Rule breach, {outcome.detail}.")
    return outcome


# ---- at the end: min trading days ---------------------------------------------------------

def trading_days(competition: Competition) -> dict[int, int]:
    """Participant id -> distinct UTC days on which they opened a position (a rise/fall
    competition: placed a trade)."""
    if competition.kind == CompetitionKind.RISE_FALL.value:
        from ..binary.models import Trade

        day = Trade.entry_ts_ms // DAY_MS
        query = (select(Trade.participant_id, func.count(func.distinct(day)))
                 .where(Trade.participant_id.in_(select(Participant.id).where(
                     Participant.competition_id == competition.id)))
                 .group_by(Trade.participant_id))
    else:
        day = CfdFill.tick_ts_ms // DAY_MS
        query = (select(CfdFill.participant_id, func.count(func.distinct(day)))
                 .where(CfdFill.competition_id == competition.id, CfdFill.action == "OPEN")
                 .group_by(CfdFill.participant_id))
    return {pid: days for pid, days in db.session.execute(query).all()}


def judge_trading_days(competition: Competition) -> list[int]:
    """At the end (in the end's transaction): each active participant below the minimum is
    recorded (rule MIN_TRADING_DAYS), which takes them out of the prize ranking
    (lifecycle.write_standings), and disqualified if the action says so. Returns their ids."""
    minimum = competition.min_trading_days
    if minimum is None:
        return []
    days = trading_days(competition)
    below = []
    for participant in db.session.scalars(select(Participant).where(
            Participant.competition_id == competition.id, Participant.status == ParticipantStatus.ACTIVE.value,
            Participant.disqualified.is_(False)).order_by(Participant.id)):
        count = days.get(participant.id, 0)
        if count >= minimum:
            continue
        detail = f"min trading days: traded on {count} day{'s' if count != 1 else ''}, fewer than the {minimum} required"
        record_breach(participant, Rule.MIN_TRADING_DAYS.value, competition.breach_action, detail=detail)
        if competition.breach_action == BreachAction.DISQUALIFY.value:
            disqualify(participant.id, f"Rule breach, {detail}.")
        below.append(participant.id)
    return below


def not_prize_eligible():
    """The participants a rule keeps out of the prize ranking (a select of ids)."""
    return select(Breach.participant_id).where(Breach.rule == Rule.MIN_TRADING_DAYS.value)


def breaches_of(competition_id: int) -> list[Breach]:
    return list(db.session.scalars(select(Breach).where(Breach.competition_id == competition_id)
                                   .order_by(Breach.id)))


def nearest_floor(competition: Competition, participant: Participant, ts_ms: int | None = None) -> tuple | None:
    """(label, floor) of the highest loss floor not yet breached, today (or on the day of
    `ts_ms`), for the trader's account bar (a template global); None without one."""
    rules = RuleSet.of(competition)
    if rules is None or participant is None:
        return None
    day = epoch_day(ts_ms if ts_ms is not None else int(utcnow().timestamp() * 1000))
    found = floors(rules, cash=participant.cash, day_start_balance=participant.day_start_balance,
                   day_start_day=participant.day_start_day, topped_up=participant.topped_up or margin.ZERO, day=day)
    done = set(db.session.scalars(select(Breach.rule).where(Breach.participant_id == participant.id)))
    found = {rule: floor for rule, floor in found.items() if rule not in done}
    if not found:
        return None
    rule, floor = max(found.items(), key=lambda item: item[1])
    label = "Daily loss floor" if rule == Rule.DAILY_LOSS.value else "Total loss floor"
    return label, floor
