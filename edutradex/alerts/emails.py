"""The email of an alert fire: one per fire, sent by a job (id ``alert-email-<fire id>``).

The job takes the fire first (``emailed_at``, set only if still empty, committed), then
sends: a second run of the same job, or a second enqueue, finds it taken and sends nothing.
A failed send gives the fire back (``emailed_at`` cleared) and raises, so RQ retries it.
The one window left is a crash between taking and sending: that email is lost, never sent
twice (the notification stays in the user's list)."""

from __future__ import annotations

import logging

from flask import current_app, render_template, url_for
from sqlalchemy import select, update
from werkzeug.routing import BuildError

from .. import jobs
from ..auth.models import User
from ..extensions import db
from ..mail import deliver_email, render_html
from ..market.models import Market
from ..types import utcnow
from .models import AlertFire, AlertStatus, PriceAlert
from .service import describe

log = logging.getLogger(__name__)


def _link() -> str:
    try:
        return url_for("alerts.notifications", _external=True)
    except (RuntimeError, BuildError):  # no request and no SERVER_NAME (a worker)
        return "/notifications"


@jobs.job
def send_alert_email(fire_id: int) -> None:
    taken = db.session.execute(update(AlertFire).where(AlertFire.id == fire_id, AlertFire.emailed_at.is_(None))
                               .values(emailed_at=utcnow()).returning(AlertFire.id)).first()
    if taken is None:
        db.session.rollback()
        return
    fire, alert, user, market = db.session.execute(
        select(AlertFire, PriceAlert, User, Market).join(PriceAlert, PriceAlert.id == AlertFire.alert_id)
        .join(User, User.id == AlertFire.user_id).join(Market, Market.symbol == AlertFire.symbol)
        .where(AlertFire.id == fire_id)).one()
    db.session.commit()
    subject = f"Price alert: {market.name}"
    job_id = f"alert-email-{fire_id}"
    try:
        body = render_template("email/alert_fired.txt", name=user.name, message=fire.message,
                               description=describe(alert, market.name, market.precision),
                               again=alert.repeat and alert.status == AlertStatus.ACTIVE.value, link=_link(),
                               site_name=current_app.config["SITE_NAME"])
        deliver_email(user.email, subject, body, job_id, render_html(subject, body))
    except Exception:
        db.session.execute(update(AlertFire).where(AlertFire.id == fire_id).values(emailed_at=None))
        db.session.commit()
        raise
