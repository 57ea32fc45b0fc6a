"""The email of an alert fire, through a real SMTP server: sent once per fire, whatever
re-runs (the job again, an engine restart that re-enqueues unsent fires), and sent later,
once, when SMTP was down at the fire."""

from __future__ import annotations

from datetime import timedelta

from edutradex.alerts import listener
from edutradex.alerts.emails import send_alert_email
from tests.alerts.conftest import EUR, Ticks, bulk_alerts, fires, started
from tests.factories import make_user
from tests.support.smtp import text_body


def test_a_fire_is_emailed_once_whatever_runs_again(mail_app, smtp_server, monkeypatch):
    from edutradex.market.service import seed_markets

    seed_markets()
    record = Ticks()
    user = make_user("carol@example.com", name="Carol")
    start = record(EUR, "1.08500")
    (alert_id,) = bulk_alerts(user.id, [("ABOVE", "1.08600", ">=", True)], start.id)
    engine = started(mail_app)
    engine([record(EUR, "1.08650")])
    (fire,) = fires(alert_id)
    assert len(smtp_server.messages) == 1
    message = smtp_server.messages[0]
    assert message["Subject"] == "[EduTradeX] Price alert: EUR/USD OTC"
    assert message["X-Envelope-To"] == "carol@example.com"
    body = text_body(message)
    assert "EUR/USD OTC rose to 1.08650: above your alert at 1.08600." in body
    assert "EUR/USD OTC rises to 1.08600 or above, every time" in body and "/notifications" in body

    send_alert_email(fire.id)  # the job again (a retried enqueue)
    monkeypatch.setattr(listener, "EMAIL_RETRY_AFTER", timedelta(0))
    engine.on_authority(False)
    started(mail_app)  # a restart re-enqueues fires no job took: this one was taken
    assert len(smtp_server.messages) == 1


def test_smtp_down_at_the_fire_sends_once_later(mail_app, smtp_server, monkeypatch):
    from edutradex.market.service import seed_markets

    seed_markets()
    record = Ticks()
    user = make_user("dan@example.com")
    start = record(EUR, "1.08500")
    (alert_id,) = bulk_alerts(user.id, [("BELOW", "1.08400", "<=", False)], start.id)
    engine = started(mail_app)
    state = mail_app.extensions["mail"]
    port, state.port = state.port, 1  # nothing listens there: SMTP is down
    engine([record(EUR, "1.08390")])
    (fire,) = fires(alert_id)
    assert smtp_server.messages == [] and fire.emailed_at is None  # given back for a retry
    state.port = port
    monkeypatch.setattr(listener, "EMAIL_RETRY_AFTER", timedelta(0))
    engine.reconcile()
    engine.reconcile()
    assert len(smtp_server.messages) == 1 and fires(alert_id)[0].emailed_at is not None


def test_an_email_that_keeps_failing_is_retried_once_a_minute_for_a_day(app, record, monkeypatch):
    from sqlalchemy import select, update

    from edutradex.alerts.models import AlertFire
    from edutradex.extensions import db
    from edutradex.types import utcnow

    with app.app_context():
        user_id = make_user().id
        start = record(EUR, "1.08500")
        (alert_id,) = bulk_alerts(user_id, [("ABOVE", "1.08600", ">=", False)], start.id)
        now = [1000.0]
        engine = listener.AlertEngine(app, monotonic=lambda: now[0])
        app.extensions["alert_engine"] = engine
        engine.on_authority(True)
        attempts = []
        monkeypatch.setattr(listener, "enqueue_email", attempts.append)
        engine([record(EUR, "1.08600")])
        fire_id = db.session.scalar(select(AlertFire.id).where(AlertFire.alert_id == alert_id))
        assert attempts == [fire_id]  # at the fire
        # its job never took it (SMTP refused it every time): an hour later the reconcile retries
        db.session.execute(update(AlertFire).values(created_at=utcnow() - timedelta(hours=1)))
        db.session.commit()
        engine.reconcile()
        engine.reconcile()
        assert attempts == [fire_id, fire_id]  # once per minute, not once per reconcile
        now[0] += 61
        engine.reconcile()
        assert attempts == [fire_id] * 3
        db.session.execute(update(AlertFire).values(created_at=utcnow() - timedelta(days=2)))
        db.session.commit()
        now[0] += 61
        engine.reconcile()
        assert len(attempts) == 3  # given up after a day: the notification stays in the list
