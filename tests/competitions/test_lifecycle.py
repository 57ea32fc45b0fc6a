"""The competition clock: start (or cancel when too few joined), end, settle; every
overdue step on start-up; RQ jobs with deterministic ids."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from edutradex import jobs
from edutradex.admin.models import AdminAuditEntry
from edutradex.competitions import lifecycle, service
from edutradex.competitions.models import Competition
from edutradex.extensions import db, socketio
from edutradex.types import utcnow
from edutradex.wallet.models import LedgerEntry
from tests.competitions.conftest import assert_books_balance, balance, open_competition, participants, trader
from tests.competitions.conftest import terms as open_terms
from tests.conftest import build_app

D = Decimal


def move_times(competition_id: int, *, start, end) -> None:
    """Put a competition's start and end where the test needs them (registration before)."""
    db.session.execute(update(Competition).where(Competition.id == competition_id).values(
        registration_opens_at=start - timedelta(hours=2), registration_closes_at=start, start_at=start, end_at=end))
    db.session.commit()


def status(competition_id: int) -> str:
    db.session.expire_all()
    return db.session.get(Competition, competition_id).status


def test_too_few_participants_at_the_start_cancels_and_refunds(db_app):
    with db_app.app_context():
        competition = open_competition(entry_fee="10.00", min_participants=3)
        users = [trader() for _ in range(2)]
        for user in users:
            service.join_competition(competition.id, user)
        assert lifecycle.start_competition(competition.id, competition.start_at - timedelta(seconds=1)) is None
        assert status(competition.id) == "SCHEDULED"
        assert lifecycle.start_competition(competition.id, competition.start_at) == "CANCELLED"
        assert lifecycle.start_competition(competition.id, competition.start_at) is None
        db.session.expire_all()
        cancelled = db.session.get(Competition, competition.id)
        assert cancelled.status == "CANCELLED" and "Fewer than 3 participants" in cancelled.cancel_reason
        assert [balance(u) for u in users] == [D("100.00"), D("100.00")]
        assert service.pool_balance(competition.id) == D("0.00")
        assert_books_balance(db_app)


def test_enough_participants_go_live_at_the_start(app):
    with app.app_context():
        competition = open_competition(min_participants=1)
        service.join_competition(competition.id, trader())
        assert lifecycle.due_steps(competition.start_at - timedelta(seconds=1)) == []
        assert lifecycle.due_steps(competition.start_at) == [(competition.id, "start")]
        assert lifecycle.run_lifecycle_cycle(competition.start_at) == 1
        assert status(competition.id) == "LIVE"
        assert lifecycle.due_steps(competition.end_at) == [(competition.id, "end")]


def test_an_end_that_passed_while_the_app_was_down_is_handled_on_start_up(db_app):
    """Both competitions' steps fell due while nothing ran: one should have started, ended
    and settled; the other (live before the outage) ended and settled."""
    closed_at = []

    def closer(competition, end_at):
        closed_at.append((competition.id, end_at))

    with db_app.app_context():
        db_app.extensions["competition_closers"] = [closer]
        a = open_competition(entry_fee="10.00", min_participants=1)
        b = open_competition(entry_fee="10.00", min_participants=1)
        users = [trader() for _ in range(2)]
        for competition in (a, b):
            for user in users:
                service.join_competition(competition.id, user)
        for n, participant in enumerate(participants(a.id) + participants(b.id)):
            participant.trades_count, participant.equity = 1, D(10000 + (n % 2) * 500)
        db.session.commit()
        now = utcnow()
        move_times(a.id, start=now - timedelta(hours=2), end=now - timedelta(hours=1))
        lifecycle.start_competition(b.id, b.start_at)
        move_times(b.id, start=now - timedelta(hours=2), end=now - timedelta(minutes=5))
        assert status(b.id) == "LIVE"

        # what the clock service does when it starts
        assert lifecycle.run_overdue() == 3  # steps: a start, a end (and settle), b end (and settle)
        assert status(a.id) == status(b.id) == "SETTLED"
        ends = {c.id: c.end_at for c in (db.session.get(Competition, a.id), db.session.get(Competition, b.id))}
        assert sorted(closed_at) == sorted(ends.items())  # closed at end_at, not at the time it ran
        # each: pool 20.00, fee 4.00, 16.00 * 70 % and 20 %: 11.20 and 3.20 (0.00 of rank 3 nobody has)
        assert sorted(balance(u) for u in users) == [D("80.00") + 2 * D("3.20"), D("80.00") + 2 * D("11.20")]
        assert lifecycle.run_overdue() == 0
        assert_books_balance(db_app)


def test_the_clock_service_runs_due_steps_every_interval(tmp_path):
    """The real background service (as the feed process or the embedded web process runs it)."""
    app = build_app(f"sqlite:///{tmp_path / 'clock.db'}", COMPETITION_CLOCK_INTERVAL_SECONDS=0.2,
                    JOBS_MODE="thread", SOCKETIO_ASYNC_MODE="threading")
    with app.app_context():
        competition = open_competition(entry_fee="10.00", min_participants=1)
        user = trader()
        service.join_competition(competition.id, user)
        now = utcnow()
        move_times(competition.id, start=now + timedelta(seconds=1), end=now + timedelta(seconds=2))
        competition_id = competition.id
        db.session.remove()
    assert lifecycle.competition_clock in app.extensions["background_services"]
    seen = []
    watcher_done = threading.Event()

    def watch():
        with app.app_context():
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                current = status(competition_id)
                if not seen or seen[-1] != current:
                    seen.append(current)
                if current == "SETTLED":
                    break
                db.session.remove()
                time.sleep(0.05)
            db.session.remove()
        watcher_done.set()

    threading.Thread(target=watch, daemon=True).start()
    app.extensions["competition_clock_stop"] = stop = threading.Event()
    clock = socketio.start_background_task(lifecycle.competition_clock, app)
    assert watcher_done.wait(20)
    stop.set()
    clock.join(5)
    assert seen[0] == "SCHEDULED" and seen[-1] == "SETTLED" and "LIVE" in seen
    with app.app_context():
        db.session.expire_all()
        settled = db.session.get(Competition, competition_id)
        assert settled.started_at >= settled.start_at and settled.ended_at >= settled.end_at
        assert_books_balance(app)
        db.session.remove()


@pytest.mark.redis
def lifecycle_jobs() -> list[str]:
    return [job_id for job_id in jobs.queue().job_ids if job_id.startswith("competition-")]


def test_rq_mode_enqueues_each_step_once_with_a_deterministic_id(tmp_path, redis_url):
    app = build_app(f"sqlite:///{tmp_path / 'rq.db'}", REDIS_URL=redis_url, JOBS_MODE="rq")
    with app.app_context():
        competition = open_competition(entry_fee="10.00", min_participants=1)
        users = [trader() for _ in range(2)]
        for user in users:
            service.join_competition(competition.id, user)
        for participant in participants(competition.id):
            participant.trades_count = 1
        db.session.commit()
        now = utcnow()
        move_times(competition.id, start=now - timedelta(minutes=2), end=now + timedelta(hours=1))
        cid = competition.id

        assert lifecycle.run_lifecycle_cycle() == 1
        assert lifecycle.run_lifecycle_cycle() == 1  # still queued: the same id, no second job
        assert lifecycle_jobs() == [f"competition-{cid}-start"]  # (the joined emails are jobs too)
        lifecycle.run_step_job(cid, "start")  # what the worker runs; a retry changes nothing
        lifecycle.run_step_job(cid, "start")
        assert status(cid) == "LIVE"

        move_times(cid, start=now - timedelta(minutes=2), end=now - timedelta(seconds=1))
        jobs.queue().empty()
        lifecycle.run_lifecycle_cycle()
        assert lifecycle_jobs() == [f"competition-{cid}-end"]
        lifecycle.run_step_job(cid, "end")
        lifecycle.run_step_job(cid, "end")
        lifecycle.run_step_job(cid, "settle")
        assert status(cid) == "SETTLED"
        assert db.session.scalar(select(func.count()).where(LedgerEntry.entry_type == "competition_prize",
                                                            LedgerEntry.wallet_id.is_not(None))) == 2
        assert_books_balance(app)
        db.session.remove()
        db.engine.dispose()


# ---- recurring competitions ------------------------------------------------------------------

TIMES = ("registration_opens_at", "registration_closes_at", "start_at", "end_at")


def instances_after(competition_id: int) -> list[Competition]:
    db.session.expire_all()
    return list(db.session.scalars(select(Competition).where(Competition.previous_id == competition_id)))


@pytest.mark.parametrize("repeats, period", [("DAILY", timedelta(days=1)), ("WEEKLY", timedelta(weeks=1))])
def test_a_recurring_competition_publishes_its_next_instance_once_when_it_starts(db_app, repeats, period):
    from edutradex.competitions.terms import TERM_FIELDS

    with db_app.app_context():
        competition = open_competition(name="Daily Sprint", slug="daily-sprint", min_participants=1,
                                       repeats=repeats.lower())
        service.join_competition(competition.id, trader())
        source = db.session.get(Competition, competition.id)
        assert source.repeats == repeats
        assert lifecycle.start_competition(source.id, now=source.start_at) == "LIVE"
        assert lifecycle.start_competition(source.id, now=source.start_at) is None  # the step runs twice
        lifecycle.run_overdue(source.start_at + timedelta(seconds=1))
        [following] = instances_after(source.id)
        source = db.session.get(Competition, source.id)
        date = (source.start_at + period).date().isoformat()
        assert following.slug == f"daily-sprint-{date}" and following.name == f"Daily Sprint ({date})"
        assert (following.status, following.seats_taken, following.repeats) == ("SCHEDULED", 0, repeats)
        assert following.published_at == source.start_at and not participants(following.id)
        [entry] = db.session.scalars(select(AdminAuditEntry).where(AdminAuditEntry.action == "competition.schedule_next"))
        assert (entry.actor_id, entry.target_id) == (None, str(following.id))  # audited, by the clock
        assert entry.note == f"next {repeats.lower()} instance of competition {source.id}, published by the clock"
        for name in TIMES:
            assert getattr(following, name) == getattr(source, name) + period, name
        for name in set(TERM_FIELDS) - set(TIMES) - {"name", "slug"}:
            assert getattr(following, name) == getattr(source, name), name
        assert service.pool_balance(following.id) == 0
        # The next one repeats in turn, and its slug drops the previous date.
        lifecycle.start_competition(following.id, now=following.start_at)
        [third] = instances_after(following.id)
        assert third.slug == f"daily-sprint-{(source.start_at + 2 * period).date().isoformat()}"
        assert third.name.count("(") == 1
        assert db.session.scalar(select(func.count(Competition.id))) == 3
        assert_books_balance(db_app)


def test_a_recurring_competition_cancelled_for_too_few_entrants_still_schedules_the_next(db_app):
    with db_app.app_context():
        competition = open_competition(min_participants=2, repeats="WEEKLY")
        user = trader("30.00")
        service.join_competition(competition.id, user)
        assert lifecycle.start_competition(competition.id, now=competition.start_at) == "CANCELLED"
        assert lifecycle.start_competition(competition.id, now=competition.start_at) is None
        [following] = instances_after(competition.id)
        assert following.status == "SCHEDULED" and following.start_at == competition.start_at + timedelta(weeks=1)
        assert balance(user) == D("30.00")  # refunded; nothing moved to the next instance
        assert_books_balance(db_app)


def test_a_one_off_competition_schedules_nothing_and_a_long_outage_skips_closed_occurrences(app):
    with app.app_context():
        one_off = open_competition(min_participants=1)
        lifecycle.start_competition(one_off.id, now=one_off.start_at)
        assert instances_after(one_off.id) == []
        daily = open_competition(min_participants=1, repeats="DAILY")
        late = daily.start_at + timedelta(days=3, hours=2)  # the clock was down for three days
        lifecycle.start_competition(daily.id, now=late)
        [following] = instances_after(daily.id)
        assert following.start_at == daily.start_at + timedelta(days=4)
        assert following.registration_closes_at > late


def test_the_next_instance_is_unique_per_competition(app):
    from sqlalchemy.exc import IntegrityError

    with app.app_context():
        competition = open_competition(repeats="DAILY")
        first = service.create_competition({**service.current_terms(competition), "slug": "copy-one"})
        second = service.create_competition({**service.current_terms(competition), "slug": "copy-two"})
        db.session.execute(update(Competition).where(Competition.id == first.id).values(previous_id=competition.id))
        db.session.commit()
        with pytest.raises(IntegrityError):
            db.session.execute(update(Competition).where(Competition.id == second.id)
                               .values(previous_id=competition.id))
        db.session.rollback()


def test_bad_repeats_is_refused(app):
    from edutradex.competitions.terms import TermsError

    with app.app_context():
        with pytest.raises(TermsError, match="Repeats: none, daily or weekly"):
            service.create_competition(open_terms(repeats="monthly"))
        assert db.session.scalar(select(func.count(Competition.id))) == 0


@pytest.mark.parametrize("too_few", [False, True], ids=["live", "cancelled"])
def test_racing_clocks_create_the_next_instance_exactly_once(db_app, too_few):
    from tests.support.concurrency import run_in_threads

    with db_app.app_context():
        competition = open_competition(min_participants=2 if too_few else 1, repeats="DAILY")
        service.join_competition(competition.id, trader())
        competition_id, start = competition.id, competition.start_at
    outcomes = run_in_threads(db_app, 6, lambda i: lifecycle.start_competition(competition_id, start))
    assert sorted(map(str, outcomes)) == ["CANCELLED" if too_few else "LIVE"] + ["None"] * 5, outcomes
    cycles = run_in_threads(db_app, 3, lambda i: lifecycle.run_overdue(start + timedelta(seconds=1)))
    assert cycles == [0, 0, 0]
    with db_app.app_context():
        [following] = instances_after(competition_id)
        assert following.status == "SCHEDULED" and following.start_at == start + timedelta(days=1)
        assert db.session.scalar(select(func.count(Competition.id))) == 2


def test_the_next_slug_keeps_its_date_with_the_longest_slug_and_never_collides(app):
    with app.app_context():
        slug = "a" * 80
        competition = open_competition(slug=slug, min_participants=1, repeats="DAILY")
        date = (competition.start_at + timedelta(days=1)).date().isoformat()
        service.create_competition(open_terms(slug=f"{'a' * 65}-{date}"))  # an admin took the natural slug
        lifecycle.start_competition(competition.id, now=competition.start_at)
        [following] = instances_after(competition.id)
        assert following.slug == f"{'a' * 65}-{date}-2" and len(following.slug) <= 80
        clone = service.clone_competition(competition.id)
        assert clone.slug == f"{'a' * 71}-copy" and len(clone.slug) <= 80
