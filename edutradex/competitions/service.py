"""Competitions as money-handling objects: terms, publishing, entry, leaving, rebuys,
cancellation and disqualification. Each function is one transaction and commits it.

Money moves only through ``wallet.ledger.post_ledger_entry``, between the trader's wallet
and the competition's prize-pool platform account, with keys that name the business
event (so a retry changes nothing):

- entry  ``competition-entry:<c>:<u>`` (``:<n>`` for the n-th entry after leaving),
- refund ``competition-refund:<c>:<u>`` (same suffix), by leaving or by a cancellation,
- rebuy  ``competition-rebuy:<c>:<u>:<n>``,
- a disqualified trader's fees on cancellation ``competition-forfeit:<c>:<u>`` (to platform revenue).

Every status change is one conditional UPDATE (``WHERE status = <expected>``): two admins,
two clocks or an admin and a clock can never both make it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ..errors import Conflict, DomainError, Forbidden, NotFound, found
from ..extensions import db
from ..types import utcnow
from ..wallet.ledger import InsufficientFunds, platform_account, post_ledger_entry, wallet_account
from ..wallet.models import EntryType, PlatformAccount, PlatformAccountKind
from . import gate, rules
from .events import announce_participants, announce_status
from .models import Competition, CompetitionStatus, Participant, ParticipantStatus, Repeats, pool_reference
from .notify import email_joined, emails_after_cancel
from .returns import top_up_cent_seconds
from .terms import TermsError, current_terms, parse_terms

log = logging.getLogger(__name__)

S = CompetitionStatus
CANCELLABLE = (S.DRAFT.value, S.SCHEDULED.value, S.LIVE.value)


# ---- keys and accounts ----------------------------------------------------------------

def pool_account(competition_id: int):
    return platform_account(PlatformAccountKind.PRIZE_POOL, pool_reference(competition_id))


def revenue_account():
    return platform_account(PlatformAccountKind.PLATFORM_REVENUE)


def _platform_balance(kind: PlatformAccountKind, reference: str = "") -> Decimal:
    balance = db.session.scalar(select(PlatformAccount.balance).where(
        PlatformAccount.kind == kind.value, PlatformAccount.reference == reference))
    return balance if balance is not None else Decimal("0.00")


def revenue_balance() -> Decimal:
    return _platform_balance(PlatformAccountKind.PLATFORM_REVENUE)


def _suffix(entry_number: int) -> str:
    return "" if entry_number == 1 else f":{entry_number}"


def entry_key(competition_id: int, user_id: int, entry_number: int = 1) -> str:
    return f"competition-entry:{competition_id}:{user_id}{_suffix(entry_number)}"


def refund_key(competition_id: int, user_id: int, entry_number: int = 1) -> str:
    return f"competition-refund:{competition_id}:{user_id}{_suffix(entry_number)}"


def rebuy_key(competition_id: int, user_id: int, number: int) -> str:
    return f"competition-rebuy:{competition_id}:{user_id}:{number}"


def pool_balance(competition_id: int) -> Decimal:
    return _platform_balance(PlatformAccountKind.PRIZE_POOL, pool_reference(competition_id))


# ---- reading --------------------------------------------------------------------------

def get_competition(competition_id: int) -> Competition:
    return found(db.session.get(Competition, competition_id), "This competition does not exist.")


def get_by_slug(slug: str) -> Competition:
    return found(db.session.scalar(select(Competition).where(Competition.slug == slug)),
                 "This competition does not exist.")


# Reads made under a lock refresh objects the session already holds (populate_existing):
# a row loaded before the lock was taken may have changed since.
FRESH = {"populate_existing": True}


def get_participant(competition_id: int, user_id: int) -> Participant | None:
    return db.session.scalar(select(Participant).where(Participant.competition_id == competition_id,
                                                       Participant.user_id == user_id).execution_options(**FRESH))


def active_participants(competition_id: int) -> list[Participant]:
    return list(db.session.scalars(select(Participant).where(
        Participant.competition_id == competition_id, Participant.status == ParticipantStatus.ACTIVE.value)
        .order_by(Participant.id).execution_options(**FRESH)))


def _commit_or_rollback(action):
    try:
        result = action()
        db.session.commit()
        return result
    except BaseException:
        db.session.rollback()
        raise


# ---- terms ----------------------------------------------------------------------------

def _audit(actor, action: str, competition_id: int, *, before=None, after=None, note: str | None = None) -> None:
    """An admin's action goes to the admin audit log, in the same transaction."""
    if actor is None:
        return
    from ..admin.services.audit import record_audit

    record_audit(actor, action, "competition", competition_id, before=before, after=after, note=note)


def create_competition(raw: Mapping[str, Any], *, created_by: int | None = None, actor=None) -> Competition:
    """A DRAFT competition with these terms."""
    terms = parse_terms(raw)

    def create() -> Competition:
        if db.session.scalar(select(Competition.id).where(Competition.slug == terms["slug"])) is not None:
            raise Conflict(f"The slug {terms['slug']!r} is already used by another competition.")
        competition = Competition(**terms, created_by=created_by, status=S.DRAFT.value)
        db.session.add(competition)
        try:
            db.session.flush()
        except IntegrityError:
            raise Conflict(f"The slug {terms['slug']!r} is already used by another competition.") from None
        _audit(actor, "competition.create", competition.id, after=terms)
        return competition

    return _commit_or_rollback(create)


def _free_slug(base: str) -> str:
    """``base`` (at most 76 characters), or ``base-2``, ``base-3`` ... : the first slug no
    competition uses (at most 80 characters)."""
    base = base[:76].rstrip("-")
    taken = set(db.session.scalars(select(Competition.slug).where(Competition.slug.like(f"{base}%"))))
    if base not in taken:
        return base
    number = 2
    while f"{base}-{number}" in taken:
        number += 1
    return f"{base}-{number}"


SCHEDULE_TIMES = ("registration_opens_at", "registration_closes_at", "start_at", "end_at")
DAY = timedelta(days=1)
PERIODS = {Repeats.DAILY.value: DAY, Repeats.WEEKLY.value: 7 * DAY}
DATE_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}(?:-\d+)?$")
NAME_DATE_SUFFIX = re.compile(r" \(\d{4}-\d{2}-\d{2}\)$")


def _copied_terms(source: Competition) -> dict[str, Any]:
    """Every term of ``source``, with its own copies of the lists and mappings."""
    terms = current_terms(source)
    terms["allowed_markets"] = list(source.allowed_markets or [])
    terms["max_leverage"] = dict(source.max_leverage or {})
    terms["prize_table"] = list(source.prize_table or [])
    return terms


def next_instance_id(competition_id: int) -> int | None:
    """The instance a recurring competition scheduled when it started, if any."""
    return db.session.scalar(select(Competition.id).where(Competition.previous_id == competition_id))


def schedule_next(competition_id: int, now: datetime) -> Competition | None:
    """The next instance of a recurring competition, in the caller's transaction (the
    lifecycle's start step, under its conditional UPDATE): the same terms, every time
    moved by one period (DAILY: a day, WEEKLY: a week; more periods only if the clock
    was down so long that the next registration would already be closed), slug
    "<slug>-YYYY-MM-DD" and name "<name> (YYYY-MM-DD)" of its start, PUBLISHED (SCHEDULED)
    and itself recurring. Exactly once: previous_id is UNIQUE, so a second insert fails
    and its transaction rolls back. None if the competition does not repeat or its next
    instance exists already."""
    source = db.session.get(Competition, competition_id, populate_existing=True)
    if source is None or source.repeats not in PERIODS:
        return None
    if next_instance_id(competition_id) is not None:
        return None
    period = PERIODS[source.repeats]
    periods = 1
    if source.registration_closes_at + period <= now:  # skip the occurrences nobody could have joined
        periods = (now - source.registration_closes_at) // period + 1
    terms = _copied_terms(source)
    for name in SCHEDULE_TIMES:
        terms[name] = getattr(source, name) + periods * period
    date = terms["start_at"].date().isoformat()
    terms["slug"] = _free_slug(f"{DATE_SUFFIX.sub('', source.slug)[:65].rstrip('-')}-{date}")
    terms["name"] = f"{NAME_DATE_SUFFIX.sub('', source.name)[:107]} ({date})"
    competition = Competition(**terms, status=S.SCHEDULED.value, published_at=now, previous_id=competition_id,
                              created_by=source.created_by)
    db.session.add(competition)
    db.session.flush()
    from ..admin.services.audit import Actor

    _audit(Actor(user_id=None), "competition.schedule_next", competition.id, after=terms,  # the clock: no admin
           note=f"next {source.repeats.lower()} instance of competition {competition_id}, published by the clock")
    log.info("competition %s repeats %s: next instance %s (%s) scheduled", competition_id, source.repeats,
             competition.id, competition.slug)
    return competition


def clone_competition(competition_id: int, *, created_by: int | None = None, actor=None,
                      now: datetime | None = None) -> Competition:
    """A new DRAFT with the same terms (never the participants, money or status), named
    "<name> (copy)" with a free slug "<slug>-copy", its times moved by the fewest whole days
    (0 if it is still ahead) that put the registration's opening in the future: every
    duration (registration window, start to end) and the time of day are kept."""
    now = now or utcnow()
    source = get_competition(competition_id)
    terms = _copied_terms(source)
    days = 0
    if source.registration_opens_at <= now:
        days = (now - source.registration_opens_at) // DAY + 1
    for name in SCHEDULE_TIMES:
        terms[name] = getattr(source, name) + days * DAY
    suffix = " (copy)"
    terms["name"] = source.name[:120 - len(suffix)] + suffix

    def create() -> Competition:
        terms["slug"] = _free_slug(f"{source.slug[:71].rstrip('-')}-copy")
        competition = Competition(**terms, created_by=created_by, status=S.DRAFT.value)
        db.session.add(competition)
        try:
            db.session.flush()
        except IntegrityError:
            raise Conflict("Another competition took this slug meanwhile: clone again.") from None
        _audit(actor, "competition.clone", competition.id, after=terms, note=f"cloned from competition {competition_id}")
        return competition

    return _commit_or_rollback(create)


def update_competition(competition_id: int, raw: Mapping[str, Any], *, actor=None) -> Competition:
    """Change the terms while the competition is a DRAFT, or SCHEDULED before anyone has
    joined. After the first entrant only the description may change."""
    competition = get_competition(competition_id)
    if set(raw) <= {"description"}:
        return update_description(competition_id, raw.get("description") or "", actor=actor)
    if competition.terms_locked:
        raise Conflict("The terms are locked: someone has already joined (only the description can change).")
    before = current_terms(competition)
    terms = parse_terms(raw, current=before)
    changed = {name: value for name, value in terms.items() if before.get(name) != value}
    if not changed:
        return competition

    def apply() -> Competition:
        if "slug" in changed and db.session.scalar(select(Competition.id).where(
                Competition.slug == terms["slug"], Competition.id != competition_id)) is not None:
            raise Conflict(f"The slug {terms['slug']!r} is already used by another competition.")
        # Conditional: a join that commits first sets has_had_entrants and this changes nothing.
        done = db.session.execute(
            update(Competition).where(Competition.id == competition_id, Competition.has_had_entrants.is_(False),
                                      Competition.status.in_((S.DRAFT.value, S.SCHEDULED.value)))
            .values(**changed, updated_at=utcnow()).returning(Competition.id)).scalar_one_or_none()
        if done is None:
            raise Conflict("The terms are locked: someone has already joined (only the description can change).")
        _audit(actor, "competition.update", competition_id, before={k: before[k] for k in changed}, after=changed)
        return competition

    _commit_or_rollback(apply)
    db.session.refresh(competition)
    return competition


def update_description(competition_id: int, description: str, *, actor=None) -> Competition:
    competition = get_competition(competition_id)
    text = (description or "").strip()
    if len(text) > 20_000:
        raise TermsError("Description: at most 20,000 characters.")
    if competition.status in (S.SETTLED.value, S.CANCELLED.value):
        raise Conflict("This competition is over; its description can no longer change.")
    before = competition.description

    def apply() -> Competition:
        competition.description = text
        _audit(actor, "competition.update_description", competition_id, before=before, after=text)
        return competition

    return _commit_or_rollback(apply)


def _transition(competition_id: int, expected: str, new: str, **values) -> bool:
    """The one way a status changes: one conditional UPDATE. True if this call made it."""
    done = db.session.execute(
        update(Competition).where(Competition.id == competition_id, Competition.status == expected)
        .values(status=new, updated_at=utcnow(), **values).returning(Competition.id)).scalar_one_or_none()
    return done is not None


def publish_competition(competition_id: int, *, actor=None, now: datetime | None = None) -> Competition:
    """DRAFT -> SCHEDULED: visible, registration follows its window."""
    now = now or utcnow()
    competition = get_competition(competition_id)
    if competition.status != S.DRAFT.value:
        raise Conflict("Only a draft can be published.")
    if competition.registration_closes_at <= now:
        raise TermsError("Registration would already be closed: move the dates before publishing.")
    if not competition.prize_table and competition.entry_fee > 0:
        raise TermsError("Add a prize table before publishing a competition with an entry fee.")

    def apply() -> Competition:
        if not _transition(competition_id, S.DRAFT.value, S.SCHEDULED.value, published_at=now):
            raise Conflict("This competition was published or cancelled meanwhile.")
        _audit(actor, "competition.publish", competition_id, before=S.DRAFT.value, after=S.SCHEDULED.value)
        return competition

    _commit_or_rollback(apply)
    db.session.refresh(competition)
    return competition


# ---- entry ----------------------------------------------------------------------------

@dataclass(frozen=True)
class JoinResult:
    participant_id: int
    seats_taken: int
    fee: Decimal


def _why_not_open(competition: Competition, now: datetime) -> DomainError:
    if competition.status == S.CANCELLED.value:
        return Conflict("This competition was cancelled.")
    if competition.status == S.DRAFT.value:
        return NotFound("This competition does not exist.")
    if competition.status != S.SCHEDULED.value:
        return Conflict("This competition has already started: registration is closed.")
    if now < competition.registration_opens_at:
        return Conflict("Registration has not opened yet.")
    if now >= competition.registration_closes_at:
        return Conflict("Registration is closed.")
    return Conflict("This competition is full.")


def join_competition(competition_id: int, user_id: int, *, now: datetime | None = None) -> JoinResult:
    """Enter a competition, in ONE transaction: the seat (a conditional UPDATE that also
    checks the window and locks the competition row), the fee from the wallet into the
    prize pool, and the participant row with its competition account."""
    now = now or utcnow()
    competition = get_competition(competition_id)
    if competition.status == S.DRAFT.value:
        raise NotFound("This competition does not exist.")
    existing = get_participant(competition_id, user_id)
    if existing is not None and existing.status == ParticipantStatus.ACTIVE.value:
        raise Conflict("You are already in this competition.")
    table = Competition.__table__
    wallet = wallet_account(user_id)  # looked up (or created) before the competition row is locked

    def join() -> JoinResult:
        # The fee and capital come from the locked row: an edit of the terms that committed
        # a moment ago is what this entrant pays, and from here on no edit can change them.
        seat = db.session.execute(
            update(table).where(table.c.id == competition_id, table.c.status == S.SCHEDULED.value,
                                table.c.registration_opens_at <= now, table.c.registration_closes_at > now,
                                table.c.seats_taken < table.c.max_participants)
            .values(seats_taken=table.c.seats_taken + 1, has_had_entrants=True)
            .returning(table.c.seats_taken, table.c.entry_fee, table.c.starting_capital)).one_or_none()
        if seat is None:
            db.session.rollback()
            raise _why_not_open(get_competition(competition_id), now)
        seats, fee, capital = seat
        # The competition row is ours until commit: read the participant again under it.
        participant = get_participant(competition_id, user_id)
        if participant is not None and participant.status == ParticipantStatus.ACTIVE.value:
            raise Conflict("You are already in this competition.")
        number = 1 if participant is None else participant.entry_number + 1
        if fee > 0:
            try:
                post_ledger_entry(EntryType.COMPETITION_ENTRY, fee, debit=wallet,
                                  credit=pool_account(competition_id), idempotency_key=entry_key(competition_id, user_id, number),
                                  reference=pool_reference(competition_id))
            except InsufficientFunds:
                raise InsufficientFunds(f"Not enough credits: the entry fee is {fee} credits.") from None
        if participant is None:
            participant = Participant(competition_id=competition_id, user_id=user_id, cash=capital, equity=capital,
                                      fees_paid=fee, joined_at=now)
            db.session.add(participant)
            try:
                db.session.flush()
            except IntegrityError:
                raise Conflict("You are already in this competition.") from None
        else:
            rejoined = db.session.execute(
                update(Participant).where(Participant.id == participant.id,
                                          Participant.status == ParticipantStatus.LEFT.value,
                                          Participant.entry_number == participant.entry_number)
                .values(status=ParticipantStatus.ACTIVE.value, entry_number=number, joined_at=now, left_at=None,
                        fees_paid=fee, cash=capital, equity=capital, trades_count=0, rebuys=0)
                .returning(Participant.id)).scalar_one_or_none()
            if rejoined is None:
                raise Conflict("You are already in this competition.")
        return JoinResult(participant_id=participant.id, seats_taken=seats, fee=fee)

    result = _commit_or_rollback(join)
    announce_participants(competition_id, result.seats_taken)
    email_joined(competition_id, user_id)
    return result


def _refund(competition_id: int, participant: Participant) -> None:
    if participant.fees_paid > 0:
        post_ledger_entry(EntryType.COMPETITION_REFUND, participant.fees_paid, debit=pool_account(competition_id),
                          credit=wallet_account(participant.user_id),
                          idempotency_key=refund_key(competition_id, participant.user_id, participant.entry_number),
                          reference=pool_reference(competition_id))


def leave_competition(competition_id: int, user_id: int, *, now: datetime | None = None) -> Decimal:
    """Leave before the start: the seat is freed and the fee refunded, exactly once.
    Returns the credits refunded."""
    now = now or utcnow()
    table = Competition.__table__

    def leave() -> Decimal:
        # Lock the competition row first (the order every entry takes), then re-check.
        locked = db.session.execute(
            update(table).where(table.c.id == competition_id, table.c.status == S.SCHEDULED.value,
                                table.c.start_at > now)
            .values(seats_taken=table.c.seats_taken).returning(table.c.id)).scalar_one_or_none()
        if locked is None:
            competition = get_competition(competition_id)
            if competition.status == S.CANCELLED.value:
                raise Conflict("This competition was cancelled; every fee has been refunded.")
            raise Conflict("The competition has started: you can no longer leave it.")
        participant = get_participant(competition_id, user_id)
        if participant is None or participant.status != ParticipantStatus.ACTIVE.value:
            raise Conflict("You are not in this competition.")
        if participant.disqualified:
            raise Forbidden("You were disqualified from this competition: the fee is not refunded.")
        left = db.session.execute(
            update(Participant).where(Participant.id == participant.id,
                                      Participant.status == ParticipantStatus.ACTIVE.value)
            .values(status=ParticipantStatus.LEFT.value, left_at=now).returning(Participant.id)).scalar_one_or_none()
        if left is None:
            raise Conflict("You are not in this competition.")
        db.session.execute(update(table).where(table.c.id == competition_id)
                           .values(seats_taken=table.c.seats_taken - 1))
        _refund(competition_id, participant)
        seats = db.session.scalar(select(table.c.seats_taken).where(table.c.id == competition_id))
        return participant.fees_paid, seats

    refunded, seats = _commit_or_rollback(leave)
    announce_participants(competition_id, seats)
    return refunded


def _settle_fees_on_cancel(competition_id: int) -> int:
    """Every active participant's fees back to their wallet (a disqualified one's to
    platform revenue). Returns how many were refunded."""
    refunded = 0
    # Forfeits first: this transaction then takes platform revenue's lock before any wallet's,
    # the order a settlement takes them in (no deadlock with a settlement paying the same trader).
    for participant in sorted(active_participants(competition_id), key=lambda p: not p.disqualified):
        if participant.fees_paid <= 0:
            continue
        if participant.disqualified:
            post_ledger_entry(EntryType.PLATFORM_FEE, participant.fees_paid, debit=pool_account(competition_id),
                              credit=revenue_account(),
                              idempotency_key=f"competition-forfeit:{competition_id}:{participant.user_id}",
                              reference=pool_reference(competition_id))
            continue
        _refund(competition_id, participant)
        refunded += 1
    left = pool_balance(competition_id)
    if left != 0:
        raise RuntimeError(f"competition {competition_id}: the pool holds {left} after the refunds")
    return refunded


def cancel_in_transaction(competition_id: int, expected: str, reason: str, now: datetime) -> bool:
    """Cancel (from ``expected``) and refund, in the caller's transaction. False if the
    status was no longer ``expected``."""
    if not _transition(competition_id, expected, S.CANCELLED.value, cancelled_at=now, cancel_reason=reason[:255]):
        return False
    _settle_fees_on_cancel(competition_id)
    return True


def _refuse_unless_cancellable(status: str) -> None:
    if status == S.CANCELLED.value:
        raise Conflict("This competition was already cancelled.")
    if status not in CANCELLABLE:
        raise Conflict("This competition has ended; it can no longer be cancelled.")


def cancel_competition(competition_id: int, reason: str, *, actor=None, now: datetime | None = None) -> int:
    """Cancel from DRAFT, SCHEDULED or LIVE: every fee (entry and rebuys) refunded once.
    Returns the number of participants refunded."""
    now = now or utcnow()
    reason = (reason or "").strip()
    if len(reason) < 3:
        raise TermsError("Give a reason for the cancellation (at least 3 characters).")
    _refuse_unless_cancellable(get_competition(competition_id).status)  # early, before any write

    def cancel() -> int:
        # The status under the row lock, not the one read above: a start that commits in
        # between makes it LIVE, and a LIVE competition is cancelled just the same.
        gate.close(competition_id)  # placements in flight finish, new ones wait for us (gate.py)
        before = db.session.scalar(select(Competition.status).where(Competition.id == competition_id)
                                   .with_for_update().execution_options(**FRESH))
        _refuse_unless_cancellable(before)
        if not _transition(competition_id, before, S.CANCELLED.value, cancelled_at=now, cancel_reason=reason[:255]):
            raise Conflict("This competition changed meanwhile (it started, ended or was cancelled): reload it.")
        refunded = _settle_fees_on_cancel(competition_id)
        _audit(actor, "competition.cancel", competition_id, before=before, after=S.CANCELLED.value, note=reason)
        return refunded

    refunded = _commit_or_rollback(cancel)
    announce_status(competition_id, S.CANCELLED.value, reason)
    emails_after_cancel(competition_id)
    return refunded


# ---- during the competition -------------------------------------------------------------

def close_positions_for_rebuy(participant: Participant) -> None:
    """Close the participant's open positions at the current recorded prices before a
    rebuy resets the account. The CFD engine (next issue) registers the real closer in
    app.extensions['competition_rebuy_closers']; today there are no positions."""
    from flask import current_app

    for closer in current_app.extensions.get("competition_rebuy_closers", []):
        closer(participant)


def rebuy(competition_id: int, user_id: int, *, now: datetime | None = None) -> int:
    """Reset the account to the starting capital for the rebuy fee (into the pool), while
    LIVE and the equity is below the starting capital. Returns the rebuy's number."""
    now = now or utcnow()

    def buy() -> int:
        competition = db.session.scalar(select(Competition).where(Competition.id == competition_id)
                                        .with_for_update().execution_options(**FRESH))  # a cancel or the end waits for us, or we for it
        if competition is None:
            raise NotFound("This competition does not exist.")
        if competition.status != S.LIVE.value or now >= competition.end_at:
            raise Conflict("Rebuys are possible only while the competition is live.")
        if not competition.rebuys_allowed:
            raise Conflict("This competition does not allow rebuys.")
        participant = get_participant(competition_id, user_id)
        if participant is None or participant.status != ParticipantStatus.ACTIVE.value:
            raise Forbidden("You are not in this competition.")
        if participant.disqualified:
            raise Forbidden("You were disqualified from this competition.")
        if participant.rebuys >= competition.max_rebuys:
            raise Conflict(f"You have used all {competition.max_rebuys} rebuys.")
        if participant.equity >= competition.starting_capital:
            raise Conflict("A rebuy is possible only while your equity is below the starting capital.")
        close_positions_for_rebuy(participant)
        number = participant.rebuys + 1
        fee = competition.rebuy_fee
        # What the reset pays in (for the time-weighted return, returns.py): the equity given
        # up, as it is after the closers ran; the UPDATE re-checks it.
        given_up = db.session.scalar(select(Participant.equity).where(Participant.id == participant.id)
                                     .execution_options(**FRESH))
        if given_up >= competition.starting_capital:
            raise Conflict("A rebuy is possible only while your equity is below the starting capital.")
        top_up = competition.starting_capital - given_up
        since_start = int((now - (competition.started_at or competition.start_at)).total_seconds())
        rules.pay_in(participant.id, top_up, int(now.timestamp() * 1000))  # the loss floors count it as paid in
        done = db.session.execute(
            update(Participant).where(Participant.id == participant.id, Participant.rebuys == number - 1,
                                      Participant.equity == given_up)
            .values(rebuys=number, cash=competition.starting_capital, equity=competition.starting_capital,
                    equity_at_ms=int(now.timestamp() * 1000), fees_paid=Participant.fees_paid + fee,
                    topped_up=Participant.topped_up + top_up,
                    topped_up_cent_seconds=Participant.topped_up_cent_seconds
                    + top_up_cent_seconds(top_up, since_start)).returning(Participant.id)).scalar_one_or_none()
        if done is None:
            raise Conflict("This rebuy was already made.")
        if fee > 0:
            try:
                post_ledger_entry(EntryType.COMPETITION_ENTRY, fee, debit=wallet_account(user_id),
                                  credit=pool_account(competition_id),
                                  idempotency_key=rebuy_key(competition_id, user_id, number),
                                  reference=pool_reference(competition_id))
            except InsufficientFunds:
                raise InsufficientFunds(f"Not enough credits: a rebuy costs {fee} credits.") from None
        return number

    return _commit_or_rollback(buy)


def disqualify(competition_id: int, user_id: int, reason: str, *, actor=None, now: datetime | None = None) -> Participant:
    """An admin removes a participant from the prizes (the fee is not refunded)."""
    now = now or utcnow()
    reason = (reason or "").strip()
    if len(reason) < 3:
        raise TermsError("Give a reason for the disqualification (at least 3 characters).")
    if len(reason) > 500:
        raise TermsError("Reason: at most 500 characters.")

    def apply() -> Participant:
        competition = db.session.scalar(select(Competition).where(Competition.id == competition_id)
                                        .with_for_update().execution_options(**FRESH))  # the settlement waits for us, or we for it
        if competition is None:
            raise NotFound("This competition does not exist.")
        if competition.status not in (S.SCHEDULED.value, S.LIVE.value, S.ENDED.value):
            raise Conflict("Participants can be disqualified only before the prizes are paid.")
        participant = get_participant(competition_id, user_id)
        if participant is None or participant.status != ParticipantStatus.ACTIVE.value:
            raise NotFound("This trader is not in this competition.")
        done = db.session.execute(
            update(Participant).where(Participant.id == participant.id, Participant.disqualified.is_(False))
            .values(disqualified=True, disqualify_reason=reason, disqualified_at=now, final_rank=None)
            .returning(Participant.id)).scalar_one_or_none()
        if done is None:
            raise Conflict("This participant is already disqualified.")
        _audit(actor, "competition.disqualify", competition_id, before={"user_id": user_id, "disqualified": False},
               after={"user_id": user_id, "disqualified": True}, note=reason)
        return participant

    participant = _commit_or_rollback(apply)
    db.session.refresh(participant)
    return participant
