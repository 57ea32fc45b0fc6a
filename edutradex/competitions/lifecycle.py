"""The competition clock: start, end and settle on the server's clock, exactly once.

- start (SCHEDULED, start_at passed): LIVE, or CANCELLED with every fee refunded when
  fewer than ``min_participants`` joined; either way a recurring competition's next
  instance is published in the same transaction (service.schedule_next);
- end (LIVE, end_at passed): ENDED; every open position is closed at the recorded tick at
  or before ``end_at`` (``close_all_at``: the CFD engine of the next issue registers the
  closer; today there are no positions and equity = cash); the final standings are
  written from the database;
- settle (ENDED): SETTLED, and the pool is paid out (prizes.py has the rules) in ONE
  transaction: platform fee, guarantee top-up, prizes (key ``competition-prize:<c>:<u>``),
  leftover cents; the pool ends at exactly 0.00.

Each step is one conditional UPDATE of the status plus its money, in one transaction: a
second clock (or an RQ retry) waits for the first one's row lock, then finds the status
changed and does nothing. A crash before the commit leaves nothing behind, and the clock
runs every overdue step when it starts again.

The clock is a background service (embedded: in the web process; production: in the feed
process). With JOBS_MODE=rq each step is an RQ job with a deterministic id
(``competition-<id>-start``, ``-end``, ``-settle``), so a step is queued once however
often the clock sees it due.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from datetime import datetime, timedelta
from decimal import Decimal

from flask import Flask, current_app
from sqlalchemy import Integer, and_, bindparam, case, exists, func, select, update

from .. import jobs
from ..extensions import db, socketio
from ..types import utcnow
from ..wallet.ledger import InsufficientFunds, post_ledger_entries, post_ledger_entry, wallet_accounts
from ..wallet.models import EntryType
from . import gate, rules
from .events import announce_settled, announce_status
from .fair_play import enqueue_live_scans, open_flag_count
from .fair_play import scan as scan_fair_play
from .fair_play_models import CompetitionFlag, FlagStatus
from .leaderboard import elapsed_seconds
from .models import Competition, CompetitionStatus, Participant, ParticipantStatus, pool_reference
from .notify import (
    REMINDER_MINUTES,
    emails_after_cancel,
    emails_after_reminder,
    emails_after_settlement,
    emails_after_start,
)
from .prizes import Split, Standing, split_pool
from .returns import cents_of, ranking_cents
from .rise_fall import SettlementPending
from .service import (
    cancel_in_transaction,
    pool_account,
    pool_balance,
    revenue_account,
    revenue_balance,
    schedule_next,
)

log = logging.getLogger(__name__)
S = CompetitionStatus
ACTIONS = ("start", "end", "settle")
MAX_PER_CYCLE = 100


class GuaranteeShortfall(Exception):
    """Platform revenue cannot cover the guaranteed pool's top-up: nothing was paid, the
    competition stays ENDED and is retried each cycle until revenue is funded (`flask wallet
    fund-revenue`). An operator's problem, not a bug: logged as a warning once a minute."""

    def __init__(self, competition_id: int, needed: Decimal):
        super().__init__(f"competition {competition_id}: the guaranteed pool needs {needed} credits from platform "
                         f"revenue, which cannot cover them; the prizes wait (flask wallet fund-revenue)")
        self.competition_id, self.needed = competition_id, needed


_SHORTFALL_WARNED: dict[int, float] = {}
SHORTFALL_WARN_SECONDS = 60.0


def _warn_shortfall(short: GuaranteeShortfall) -> None:
    now = time.monotonic()
    if now - _SHORTFALL_WARNED.get(short.competition_id, -SHORTFALL_WARN_SECONDS) >= SHORTFALL_WARN_SECONDS:
        _SHORTFALL_WARNED[short.competition_id] = now
        log.warning("%s", short)


def guarantee_shortfall(competition_id: int) -> tuple[Decimal, Decimal] | None:
    """For an ENDED competition whose prizes the guarantee tops up: (the top-up the prizes
    need, what platform revenue can give: its balance plus this competition's fee) when
    the first is larger, else None. For the admin's page."""
    competition = db.session.get(Competition, competition_id)
    if competition is None or competition.status != S.ENDED.value or competition.guaranteed_pool <= 0:
        return None
    split = split_pool(pool_balance(competition_id), competition.platform_fee_percent,
                       [Decimal(p) for p in competition.prize_table], _standings(competition_id),
                       competition.guaranteed_pool)
    available = revenue_balance() + split.fee
    return (split.topup, available) if split.topup > available else None


def prize_key(competition_id: int, user_id: int) -> str:
    return f"competition-prize:{competition_id}:{user_id}"


def _crash_point(name: str) -> None:
    """Tests kill the process here (COMPETITION_CRASH_POINT) to prove crash safety."""
    if current_app.config.get("COMPETITION_CRASH_POINT") == name:
        log.warning("crash point %s: killing the process", name)
        os.kill(os.getpid(), signal.SIGKILL)


# ---- the steps --------------------------------------------------------------------------

def start_competition(competition_id: int, now: datetime | None = None) -> str | None:
    """SCHEDULED -> LIVE (or CANCELLED if too few joined). Returns the new status, or None
    if there was nothing to do (not due, or done by someone else)."""
    now = now or utcnow()
    table = Competition.__table__
    try:
        started = db.session.execute(
            update(table).where(table.c.id == competition_id, table.c.status == S.SCHEDULED.value,
                                table.c.start_at <= now, table.c.seats_taken >= table.c.min_participants)
            .values(status=S.LIVE.value, started_at=now, updated_at=now).returning(table.c.id)).scalar_one_or_none()
        if started is not None:
            schedule_next(competition_id, now)
            db.session.commit()
            announce_status(competition_id, S.LIVE.value)
            emails_after_start(competition_id)
            return S.LIVE.value
        competition = db.session.get(Competition, competition_id, populate_existing=True)
        if competition is None or competition.status != S.SCHEDULED.value or competition.start_at > now:
            db.session.rollback()
            return None
        reason = f"Fewer than {competition.min_participants} participants joined; every fee was refunded."
        # Seats only change under the window (closed by now), so the count read is final.
        if not cancel_in_transaction(competition_id, S.SCHEDULED.value, reason, now):
            db.session.rollback()
            return None
        # A recurring competition cancelled for too few entrants still schedules the next
        # one: the series goes on (an admin ends it by cancelling the next instance).
        schedule_next(competition_id, now)
        db.session.commit()
        announce_status(competition_id, S.CANCELLED.value, reason)
        emails_after_cancel(competition_id)
        return S.CANCELLED.value
    except BaseException:
        db.session.rollback()
        raise


def send_reminders(now: datetime | None = None) -> list[int]:
    """Queue the "starts in 15 minutes" emails of every SCHEDULED competition whose start
    is at most REMINDER_MINUTES away and not yet passed. Each competition's reminder is
    claimed by one conditional UPDATE (``reminder_sent_at IS NULL``), committed before the
    emails are queued, so two clocks or a restart never send it twice. Returns the ids."""
    now = now or utcnow()
    table = Competition.__table__
    try:
        claimed = db.session.execute(
            update(table).where(table.c.status == S.SCHEDULED.value, table.c.reminder_sent_at.is_(None),
                                table.c.start_at > now,
                                table.c.start_at <= now + timedelta(minutes=REMINDER_MINUTES))
            .values(reminder_sent_at=now).returning(table.c.id)).scalars().all()
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    for competition_id in claimed:
        emails_after_reminder(competition_id)
    return list(claimed)


def close_all_at(competition: Competition, end_at: datetime) -> None:
    """Close every open position and order of the competition at the recorded tick at or
    before ``end_at`` (bid for longs, ask for shorts), in the caller's transaction. The
    CFD engine registers its closer in app.extensions['competition_closers']; until then
    no competition holds positions and equity is cash."""
    for closer in current_app.extensions.get("competition_closers", []):
        closer(competition, end_at)


def write_standings(competition_id: int, requires_trade: bool) -> None:
    """final_equity from the accounts; final_rank among the participants who can win
    (not disqualified, not below the rule set's minimum trading days, and having traded if
    the competition requires it), equal equity
    sharing a rank (SQL RANK: 1, 2, 2, 4). With rebuys, by the time-weighted return on the
    money paid in instead, as the live board ranks (``returns.ranking_cents`` with T = the
    seconds from the start to the end): a rebuy cannot buy a rank; equal scores share a rank."""
    p = Participant.__table__
    active = and_(p.c.competition_id == competition_id, p.c.status == ParticipantStatus.ACTIVE.value)
    db.session.execute(update(p).where(active, p.c.final_equity.is_(None)).values(final_equity=p.c.equity))
    eligible = and_(active, p.c.disqualified.is_(False), p.c.id.not_in(rules.not_prize_eligible()))
    if requires_trade:
        eligible = and_(eligible, p.c.trades_count > 0)
    db.session.execute(update(p).where(p.c.competition_id == competition_id).values(final_rank=None))
    competition = db.session.get(Competition, competition_id)
    if competition.rebuys_allowed:
        _write_ranks_by_return(competition, eligible)
        return
    ranked = (select(p.c.id.label("pid"), func.rank().over(order_by=p.c.final_equity.desc()).label("r"))
              .where(eligible).subquery())
    db.session.execute(update(p).where(p.c.id == ranked.c.pid).values(final_rank=ranked.c.r.cast(Integer)))


def _write_ranks_by_return(competition: Competition, eligible) -> None:
    """final_rank by the ranking score at the end (1, 2, 2, 4 on equal scores)."""
    p = Participant.__table__
    start_cents = cents_of(competition.starting_capital)
    elapsed = elapsed_seconds(competition, competition.end_at)
    rows = db.session.execute(select(p.c.id, p.c.final_equity, p.c.topped_up, p.c.topped_up_cent_seconds)
                              .where(eligible, p.c.final_equity.is_not(None))).all()
    scores = sorted(((ranking_cents(cents_of(equity), start_cents, cents_of(topped or 0), cent_seconds or 0, elapsed),
                      pid) for pid, equity, topped, cent_seconds in rows), key=lambda s: (-s[0], s[1]))
    ranks, rank = [], 0
    for place, (score, pid) in enumerate(scores, start=1):
        if place == 1 or score != scores[place - 2][0]:
            rank = place
        ranks.append({"pid": pid, "rank": rank})
    if ranks:
        db.session.execute(update(p).where(p.c.id == bindparam("pid")).values(final_rank=bindparam("rank")), ranks)


def end_competition(competition_id: int, now: datetime | None = None) -> bool:
    """LIVE -> ENDED at end_at: close everything at the end tick, write the standings."""
    now = now or utcnow()
    table = Competition.__table__
    try:
        gate.close(competition_id, table.c.status == S.LIVE.value, table.c.end_at <= now)  # placements queue behind us
        ended = db.session.execute(
            update(table).where(table.c.id == competition_id, table.c.status == S.LIVE.value, table.c.end_at <= now)
            .values(status=S.ENDED.value, ended_at=now, updated_at=now).returning(table.c.id)).scalar_one_or_none()
        if ended is None:
            db.session.rollback()
            return False
        competition = db.session.get(Competition, competition_id, populate_existing=True)
        close_all_at(competition, competition.end_at)
        rules.judge_trading_days(competition)  # below the minimum: not ranked (or disqualified)
        write_standings(competition_id, competition.prize_requires_trade)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    announce_status(competition_id, S.ENDED.value)
    return True


def review_then_settle(competition_id: int, now: datetime | None = None) -> Split | None:
    """The prizes wait for the fair-play review. The final trades are scanned first (a
    scan keeps decided flags as they are and never repeats one); while any flag of the
    competition is open, nothing is paid: an admin dismisses it or disqualifies a trader it
    names, and the clock's next cycle pays (due_steps skips a competition on hold). A scan
    that fails is retried by the clock, and the prizes wait for it."""
    scan_fair_play(competition_id)
    return settle_competition(competition_id, now)


def _standings(competition_id: int) -> list[Standing]:
    rows = db.session.execute(
        select(Participant.id, Participant.user_id, Participant.final_rank)
        .where(Participant.competition_id == competition_id, Participant.final_rank.is_not(None))
        .order_by(Participant.final_rank, Participant.id)).all()
    return [Standing(participant_id=pid, user_id=uid, rank=rank) for pid, uid, rank in rows]


def settle_competition(competition_id: int, now: datetime | None = None) -> Split | None:
    """ENDED -> SETTLED and every prize paid, in one transaction. None if there was
    nothing to do (not ended yet, or already settled by someone else)."""
    now = now or utcnow()
    cid = competition_id
    reference = pool_reference(cid)
    try:
        if not db.session.execute(
                update(Competition).where(Competition.id == cid, Competition.status == S.ENDED.value)
                .values(status=S.SETTLED.value, settled_at=now, updated_at=now).returning(Competition.id)
        ).scalar_one_or_none():
            db.session.rollback()
            return None
        held = open_flag_count(cid)
        if held:  # checked under the status lock: a disqualification or a dismissal comes first
            db.session.rollback()
            log.info("competition %s: prizes held while %d fair-play flag(s) are open", cid, held)
            return None
        # The status row is locked until our commit: a disqualification waits for us.
        competition = db.session.get(Competition, cid, populate_existing=True)
        write_standings(cid, competition.prize_requires_trade)  # a disqualification after the end counts
        standings = _standings(cid)
        split = split_pool(pool_balance(cid), competition.platform_fee_percent,
                           [Decimal(p) for p in competition.prize_table], standings, competition.guaranteed_pool)
        pool, revenue = pool_account(cid), revenue_account()
        if split.fee > 0:
            post_ledger_entry(EntryType.PLATFORM_FEE, split.fee, debit=pool, credit=revenue,
                              idempotency_key=f"competition-fee:{cid}", reference=reference)
        if split.topup > 0:
            try:
                post_ledger_entry(EntryType.COMPETITION_GUARANTEE, split.topup, debit=revenue, credit=pool,
                                  idempotency_key=f"competition-guarantee:{cid}", reference=reference)
            except InsufficientFunds:
                raise GuaranteeShortfall(cid, split.topup) from None
        user_of = {s.participant_id: s.user_id for s in standings}
        winners = sorted(split.prizes.items(), key=lambda item: (user_of[item[0]], item[0]))
        wallets = wallet_accounts([user_of[pid] for pid, _ in winners])
        post_ledger_entries(EntryType.COMPETITION_PRIZE, pool,
                            [(wallets[user_of[pid]], prize, prize_key(cid, user_of[pid])) for pid, prize in winners],
                            reference=reference)
        _crash_point("competition-prize")  # the prizes are posted, the leftover and the commit are not
        if split.leftover > 0:
            post_ledger_entry(EntryType.PLATFORM_FEE, split.leftover, debit=pool, credit=revenue,
                              idempotency_key=f"competition-leftover:{cid}", reference=reference)
        _record_prizes(cid, split)
        competition.pool_at_settlement = split.pool
        competition.platform_fee_amount = split.fee
        competition.net_pool = split.net_pool
        competition.guarantee_topup = split.topup
        competition.prizes_paid = split.paid
        competition.leftover_to_platform = split.leftover
        db.session.flush()
        left = pool_balance(cid)
        if left != 0:
            raise RuntimeError(f"competition {cid}: the pool holds {left} after settlement")
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    announce_settled(cid)
    emails_after_settlement(cid)
    return split


def _record_prizes(competition_id: int, split: Split) -> None:
    p = Participant.__table__
    db.session.execute(update(p).where(p.c.competition_id == competition_id, p.c.status == ParticipantStatus.ACTIVE.value)
                       .values(prize=Decimal("0.00")))
    if not split.prizes:
        return
    by_amount: dict[Decimal, list[int]] = {}
    for participant_id, prize in split.prizes.items():
        by_amount.setdefault(prize, []).append(participant_id)
    for prize, ids in by_amount.items():  # tied winners share an amount: few statements
        for offset in range(0, len(ids), 1000):
            db.session.execute(update(p).where(p.c.id.in_(ids[offset:offset + 1000])).values(prize=prize))


# ---- the clock --------------------------------------------------------------------------

def due_steps(now: datetime | None = None, limit: int = MAX_PER_CYCLE) -> list[tuple[int, str]]:
    """(competition id, step) for every step that is due, oldest first."""
    now = now or utcnow()
    c = Competition
    step = case((c.status == S.SCHEDULED.value, "start"), (c.status == S.LIVE.value, "end"), else_="settle")
    due_at = case((c.status == S.SCHEDULED.value, c.start_at), else_=c.end_at)
    rows = db.session.execute(
        select(c.id, step).where(
            ((c.status == S.SCHEDULED.value) & (c.start_at <= now))
            | ((c.status == S.LIVE.value) & (c.end_at <= now))
            | ((c.status == S.ENDED.value) & ~on_hold(c.id)))
        .order_by(due_at, c.id).limit(limit)).all()
    db.session.rollback()
    return [(cid, action) for cid, action in rows]


def on_hold(competition_id):
    """SQL: the competition has an open fair-play flag, so its prizes wait for the review."""
    return exists().where(CompetitionFlag.competition_id == competition_id,
                          CompetitionFlag.status == FlagStatus.OPEN.value)


def run_step(competition_id: int, action: str, now: datetime | None = None):
    if action == "start":
        return start_competition(competition_id, now)
    if action == "end":
        if end_competition(competition_id, now):
            return review_then_settle(competition_id, now)
        return None
    if action == "settle":
        return review_then_settle(competition_id, now)
    raise ValueError(f"unknown competition step {action!r}")


@jobs.job
def run_step_job(competition_id: int, action: str) -> None:
    """RQ entry point: one job per (competition, step). A guarantee shortfall is a wait, not
    a failed job: the clock enqueues the step again next cycle."""
    try:
        run_step(competition_id, action)
    except GuaranteeShortfall as short:
        _warn_shortfall(short)


def step_job_id(competition_id: int, action: str) -> str:
    return f"competition-{competition_id}-{action}"


def run_lifecycle_cycle(now: datetime | None = None) -> int:
    """Send the due reminders, queue the periodic fair-play scans of LIVE competitions
    (fair_play.enqueue_live_scans: one query every few minutes), then run (or, with RQ,
    enqueue) every due step. Returns how many steps were due."""

    try:
        send_reminders(now)
    except Exception:
        log.exception("competition reminders failed")  # retried next cycle: nothing was claimed
    try:
        enqueue_live_scans()
    except Exception:
        log.exception("fair-play scans failed")  # retried at the next interval
    steps = due_steps(now)
    use_rq = current_app.config["JOBS_MODE"] == "rq"
    for competition_id, action in steps:
        if use_rq:
            jobs.enqueue(run_step_job, competition_id, action, job_id=step_job_id(competition_id, action))
            continue
        try:
            run_step(competition_id, action, now)
        except SettlementPending as pending:
            log.info("%s; the end is retried next cycle", pending)  # the usual wait for the tick store's flush
        except GuaranteeShortfall as short:
            _warn_shortfall(short)
        except Exception:
            # The step rolled back; the competition keeps its status and is retried next cycle.
            log.exception("competition %s: %s failed", competition_id, action)
    return len(steps)


def run_overdue(now: datetime | None = None) -> int:
    """Start-up: every step that fell due while nothing was running, in order (a
    competition that should have started and ended meanwhile is started, ended and settled)."""
    total = 0
    for _ in range(10_000):
        steps = due_steps(now)
        if not steps:
            break
        progressed = 0
        for competition_id, action in steps:
            try:
                if run_step(competition_id, action, now) is not None:
                    progressed += 1
            except SettlementPending as pending:
                log.info("%s; the clock retries the end", pending)
            except GuaranteeShortfall as short:
                _warn_shortfall(short)
            except Exception:
                log.exception("competition %s: overdue %s failed", competition_id, action)
        total += progressed
        if not progressed:
            break
    return total


def competition_clock(app: Flask) -> None:
    """The background service: catch up on start-up, then every interval."""
    interval = app.config.get("COMPETITION_CLOCK_INTERVAL_SECONDS", 1.0)
    with app.app_context():
        try:
            done = run_overdue() if app.config["JOBS_MODE"] != "rq" else run_lifecycle_cycle()
            log.info("competition clock started (%s overdue steps handled)", done)
        except Exception:
            log.exception("competition recovery failed; the clock will retry")
        finally:
            db.session.remove()
    stop = app.extensions.get("competition_clock_stop")  # an Event, set to stop the loop (tests)
    while stop is None or not stop.is_set():
        socketio.sleep(interval)
        with app.app_context():
            try:
                run_lifecycle_cycle()
            except Exception:
                log.exception("competition clock cycle failed")
            finally:
                db.session.remove()
