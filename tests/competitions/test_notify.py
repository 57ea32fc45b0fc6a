"""Competition emails through the real SMTP server: joined (with the terms), cancelled
(with the refund), results (rank, equity, prize); each sent once per event."""

from __future__ import annotations

import time
from datetime import timedelta

from edutradex.competitions import lifecycle, notify, service
from edutradex.types import utcnow
from tests.competitions.conftest import fund, open_competition
from tests.factories import make_user
from tests.support.smtp import html_body, text_body


def bodies(smtp_server, count):
    messages = smtp_server.wait_for(count)
    assert len(messages) == count, [m["Subject"] for m in messages]
    return [(str(m["To"]), str(m["Subject"]).removeprefix("[EduTradeX] "), text_body(m))
            for m in messages]


def test_joined_email_carries_the_terms(mail_app, smtp_server):
    user = make_user("ann@example.com", name="Ann")
    fund(user.id, "50.00")
    c = open_competition(guaranteed_pool="100.00", rebuys_allowed=True, max_rebuys=2, rebuy_fee="5.00")
    service.join_competition(c.id, user.id)
    [(to, subject, body)] = bodies(smtp_server, 1)
    assert to == "ann@example.com" and subject == f"You joined {c.name}"
    # The message id carries the job id, which names the event (a retried job sends once).
    assert f"email-competition-joined-{c.id}-{user.id}-1" in str(smtp_server.messages[0]["Message-ID"])
    for text in ("paid 10.00 credits into the prize pool", "starting capital of 10000.00 USD",
                 f"Start: {c.start_at:%Y-%m-%d %H:%M:%S} UTC", "FX_MAJOR 30:1", "Platform fee: 20.00 %",
                 "guaranteed pool 100.00", "#1 70.00 %, #2 20.00 %, #3 10.00 %", "split the prizes",
                 "No trade, no prize.", "up to 2 at 5.00 credits each", f"/competitions/{c.id}"):
        assert text in body, text


def test_joined_email_has_a_branded_html_part_with_the_terms_as_a_list(mail_app, smtp_server):
    user = make_user("mal@example.com", name="Mal <script>x()</script>")
    fund(user.id, "50.00")
    c = open_competition()
    service.join_competition(c.id, user.id)
    [message] = smtp_server.wait_for(1)
    assert message.get_content_type() == "multipart/alternative"
    assert text_body(message).startswith("Hello Mal <script>x()</script>,\n\nYou joined ")
    html = html_body(message)
    assert "EduTradeX" in html and f"You joined {c.name}" in html and "The terms (locked):" in html
    assert "Hello Mal &lt;script&gt;x()&lt;/script&gt;," in html and "<script" not in html
    assert '<li style="margin:0 0 4px 0;">Platform fee: 20.00 % of the pool</li>' in html
    assert f'/competitions/{c.id}</a>' in html  # the link is clickable


def test_cancellation_emails_each_participant_their_refund_once(mail_app, smtp_server):
    c = open_competition()
    users = [make_user(f"p{i}@example.com") for i in range(2)]
    for user in users:
        fund(user.id, "10.00")
        service.join_competition(c.id, user.id)
    bodies(smtp_server, 2)  # the joined emails
    smtp_server.messages.clear()
    service.cancel_competition(c.id, "Market data outage")
    sent = bodies(smtp_server, 2)
    assert sorted(to for to, _, _ in sent) == ["p0@example.com", "p1@example.com"]
    for _, subject, body in sent:
        assert subject == f"{c.name} was cancelled"
        assert "Market data outage" in body and "Your 10.00 credits have been refunded" in body


def test_results_email_has_rank_equity_and_prize(mail_app, smtp_server):
    now = utcnow().replace(microsecond=0)
    # registration stays open for 30 s of real time (a loaded machine joins late); the
    # lifecycle steps run at explicit times after it
    c = open_competition(registration_closes_at=now + timedelta(seconds=30), start_at=now + timedelta(seconds=30),
                         end_at=now + timedelta(seconds=32), prize_requires_trade=False)
    user = make_user("win@example.com")
    fund(user.id, "10.00")
    service.join_competition(c.id, user.id)
    smtp_server.wait_for(1)
    smtp_server.messages.clear()
    lifecycle.start_competition(c.id, now=now + timedelta(seconds=31))
    smtp_server.wait_for(1)  # the "started" email
    smtp_server.messages.clear()
    lifecycle.end_competition(c.id, now=now + timedelta(seconds=33))
    lifecycle.settle_competition(c.id, now=now + timedelta(seconds=34))
    [(to, subject, body)] = bodies(smtp_server, 1)
    assert to == "win@example.com" and subject == f"Your result in {c.name}"
    assert "Your rank: 1" in body and "Your final equity: 10000.00 USD" in body
    assert "Your prize: 5.60 credits, already in your wallet" in body  # 10 - 20 % = 8 net, 70 %
    assert f"email-competition-results-{c.id}-{user.id}" in str(smtp_server.messages[0]["Message-ID"])


def test_too_few_entrants_at_the_start_cancel_with_emails(mail_app, smtp_server):
    now = utcnow().replace(microsecond=0)
    c = open_competition(min_participants=2, registration_closes_at=now + timedelta(seconds=30),
                         start_at=now + timedelta(seconds=30))
    user = make_user("alone@example.com")
    fund(user.id, "10.00")
    service.join_competition(c.id, user.id)
    smtp_server.wait_for(1)
    smtp_server.messages.clear()
    assert lifecycle.start_competition(c.id, now=now + timedelta(seconds=31)) == "CANCELLED"
    [(to, subject, body)] = bodies(smtp_server, 1)
    assert "Fewer than 2 participants joined" in body and "Your 10.00 credits have been refunded" in body


def test_reminder_and_started_emails_are_sent_once_each_however_often_the_clock_runs(mail_app, smtp_server):
    now = utcnow().replace(microsecond=0)
    c = open_competition(registration_closes_at=now + timedelta(seconds=30), start_at=now + timedelta(minutes=20),
                         end_at=now + timedelta(minutes=60))
    users = [make_user(f"r{i}@example.com", name=f"R{i}") for i in range(2)]
    for user in users:
        fund(user.id, "10.00")
        service.join_competition(c.id, user.id)
    smtp_server.wait_for(2)
    smtp_server.messages.clear()
    lifecycle.run_lifecycle_cycle(now + timedelta(minutes=4))  # 16 minutes before the start: too early
    assert smtp_server.wait_for(1, timeout=1.0) == []
    for minutes in (5, 5, 6):  # 15 minutes before, twice in the same second (two clocks), then later
        lifecycle.run_lifecycle_cycle(now + timedelta(minutes=minutes))
    sent = bodies(smtp_server, 2)
    assert sorted(to for to, _, _ in sent) == ["r0@example.com", "r1@example.com"]
    for _, subject, body in sent:
        assert subject == f"{c.name} starts in 15 minutes"
        assert f"at {c.start_at:%Y-%m-%d %H:%M:%S} UTC" in body and f"/competitions/{c.id}" in body
    time.sleep(0.5)
    assert len(smtp_server.messages) == 2
    smtp_server.messages.clear()
    for seconds in (0, 0, 1):  # the start, seen by two cycles at once and again a second later
        lifecycle.run_lifecycle_cycle(now + timedelta(minutes=20, seconds=seconds))
    sent = bodies(smtp_server, 2)
    assert {subject for _, subject, _ in sent} == {f"{c.name} has started"}
    assert all("you can trade now" in body and f"/competitions/{c.id}" in body for _, _, body in sent)
    time.sleep(0.5)
    assert len(smtp_server.messages) == 2
    assert f"email-competition-started-{c.id}-{users[0].id}" in " ".join(str(m["Message-ID"])
                                                                         for m in smtp_server.messages)


def test_a_competition_cancelled_at_its_start_gets_no_started_email(mail_app, smtp_server):
    now = utcnow().replace(microsecond=0)
    c = open_competition(min_participants=2, registration_closes_at=now + timedelta(seconds=30),
                         start_at=now + timedelta(minutes=10), end_at=now + timedelta(minutes=60))
    user = make_user("solo@example.com")
    fund(user.id, "10.00")
    service.join_competition(c.id, user.id)
    smtp_server.wait_for(1)
    smtp_server.messages.clear()
    lifecycle.run_lifecycle_cycle(now + timedelta(seconds=31))  # reminder (within 15 minutes)
    assert [s for _, s, _ in bodies(smtp_server, 1)] == [f"{c.name} starts in 15 minutes"]
    smtp_server.messages.clear()
    for _ in range(2):
        lifecycle.run_lifecycle_cycle(now + timedelta(minutes=10))
    [(_, subject, body)] = bodies(smtp_server, 1)
    time.sleep(0.5)
    assert len(smtp_server.messages) == 1
    assert subject == f"{c.name} was cancelled" and "Fewer than 2 participants joined" in body


def test_no_reminder_for_a_competition_that_already_started_or_is_far_away(mail_app):
    now = utcnow().replace(microsecond=0)
    c = open_competition(registration_closes_at=now + timedelta(seconds=30), start_at=now + timedelta(minutes=20),
                         end_at=now + timedelta(minutes=60))
    assert lifecycle.send_reminders(now) == []  # 20 minutes away
    assert lifecycle.send_reminders(now + timedelta(minutes=20)) == []  # at the start: the start step's job
    assert lifecycle.send_reminders(now + timedelta(minutes=5)) == [c.id]
    assert lifecycle.send_reminders(now + timedelta(minutes=6)) == []


def test_every_email_job_id_is_one_rq_accepts():
    """RQ refuses a job id with anything but letters, digits, _ and - (its emails would be lost)."""
    from rq.job import JOB_ID_PATTERN

    for key in (notify.email_key("joined", 12, 34, 2), notify.email_key("cancelled", 12, 34),
                notify.email_key("results", 12, 34), notify.email_key("reminder", 12, 34),
                notify.email_key("started", 12, 34)):
        assert JOB_ID_PATTERN.fullmatch(f"email-{key}"), key
    assert JOB_ID_PATTERN.fullmatch("competition-12-cancelled-emails")
    assert JOB_ID_PATTERN.fullmatch("competition-12-reminder-emails")
    assert JOB_ID_PATTERN.fullmatch("competition-12-started-emails")
