"""Competition emails, sent after the commit they report on: joined (with the terms),
starts in 15 minutes, started, cancelled (with the refund), results (rank, equity, prize). Each email's job id names its
business event (``email-competition-joined-<c>-<u>-<entry>``, ``...-cancelled-<c>-<u>``,
``...-results-<c>-<u>``; dashes only, as RQ requires of a job id), so a repeated
notification sends once; the per-participant emails
of a cancellation or a settlement go out from one background job
(``competition-<id>-reminder-emails`` / ``-started-emails`` / ``-cancelled-emails`` /
``-results-emails``) so the clock never waits
for SMTP. A failing email is logged; the money has moved and stays moved."""

from __future__ import annotations

import logging
from decimal import Decimal

from flask import url_for
from sqlalchemy import select
from werkzeug.routing import BuildError

from .. import jobs
from ..auth.models import User
from ..extensions import db
from ..wallet.notify import email_user
from .models import Competition, Participant, ParticipantStatus

log = logging.getLogger(__name__)


def email_key(event: str, competition_id: int, user_id: int, entry_number: int | None = None) -> str:
    key = f"competition-{event}-{competition_id}-{user_id}"
    return key if entry_number is None else f"{key}-{entry_number}"


def _link(competition_id: int) -> str:
    try:
        return url_for("competitions.detail", competition_id=competition_id, _external=True)
    except (RuntimeError, BuildError):  # no request and no SERVER_NAME (a worker), or pages closed
        return f"/competitions/{competition_id}"


def _safely(what: str, action) -> None:
    try:
        action()
    except Exception:
        log.exception("competition email %s failed", what)


def email_joined(competition_id: int, user_id: int) -> None:
    def send() -> None:
        competition = db.session.get(Competition, competition_id)
        participant = db.session.scalar(select(Participant).where(Participant.competition_id == competition_id,
                                                                  Participant.user_id == user_id))
        user = db.session.get(User, user_id)
        email_user(user.email, f"You joined {competition.name}", "competition_joined",
                   email_key("joined", competition_id, user_id, participant.entry_number),
                   name=user.name, c=competition, fee=participant.fees_paid, link=_link(competition_id),
                   prize_table=[Decimal(p) for p in competition.prize_table])

    _safely("joined", send)


def _active(competition_id: int):
    return db.session.execute(
        select(Participant, User).join(User, User.id == Participant.user_id)
        .where(Participant.competition_id == competition_id, Participant.status == ParticipantStatus.ACTIVE.value)
        .order_by(Participant.id)).all()


@jobs.job
def send_cancelled_emails(competition_id: int) -> None:
    competition = db.session.get(Competition, competition_id)
    for participant, user in _active(competition_id):
        _safely("cancelled", lambda p=participant, u=user: email_user(
            u.email, f"{competition.name} was cancelled", "competition_cancelled",
            email_key("cancelled", competition_id, u.id), name=u.name, c=competition,
            refund=Decimal("0.00") if p.disqualified else p.fees_paid, disqualified=p.disqualified,
            link=_link(competition_id)))


@jobs.job
def send_result_emails(competition_id: int) -> None:
    competition = db.session.get(Competition, competition_id)
    for participant, user in _active(competition_id):
        _safely("results", lambda p=participant, u=user: email_user(
            u.email, f"Your result in {competition.name}", "competition_results",
            email_key("results", competition_id, u.id), name=u.name, c=competition, p=p,
            link=_link(competition_id)))


REMINDER_MINUTES = 15


@jobs.job
def send_reminder_emails(competition_id: int) -> None:
    competition = db.session.get(Competition, competition_id)
    for _participant, user in _active(competition_id):
        _safely("reminder", lambda u=user: email_user(
            u.email, f"{competition.name} starts in {REMINDER_MINUTES} minutes", "competition_reminder",
            email_key("reminder", competition_id, u.id), name=u.name, c=competition, minutes=REMINDER_MINUTES,
            link=_link(competition_id)))


@jobs.job
def send_started_emails(competition_id: int) -> None:
    competition = db.session.get(Competition, competition_id)
    for _participant, user in _active(competition_id):
        _safely("started", lambda u=user: email_user(
            u.email, f"{competition.name} has started", "competition_started",
            email_key("started", competition_id, u.id), name=u.name, c=competition, link=_link(competition_id)))


def _enqueue(event: str, send, competition_id: int) -> None:
    """One job per competition and event sends that event's emails to every participant."""
    _safely(event, lambda: jobs.enqueue(send, competition_id, job_id=f"competition-{competition_id}-{event}-emails"))


def emails_after_reminder(competition_id: int) -> None:
    _enqueue("reminder", send_reminder_emails, competition_id)


def emails_after_start(competition_id: int) -> None:
    _enqueue("started", send_started_emails, competition_id)


def emails_after_cancel(competition_id: int) -> None:
    _enqueue("cancelled", send_cancelled_emails, competition_id)


def emails_after_settlement(competition_id: int) -> None:
    _enqueue("results", send_result_emails, competition_id)
