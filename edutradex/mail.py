"""Email: rendered from templates/email/<name>.txt, delivered by a background job.

With MAIL_SERVER set, Flask-Mail sends over SMTP. Without it (the embedded default) each
message is written as an .eml file to MAIL_OUTBOX_DIR and logged, so nothing is lost and
a developer can open it. Call send_email after the database commit it reports on."""

from __future__ import annotations

import logging
import uuid
from email.utils import make_msgid
from pathlib import Path

from flask import current_app, render_template
from flask_mail import Message

from . import jobs
from .extensions import mail

log = logging.getLogger(__name__)

# An SMTP server that is down for a while delays an email, it does not lose it ("withdrawal
# paid" included): the delivery job is retried after these many seconds (RQ mode).
RETRY_INTERVALS = (30, 120, 600, 1800)


def send_email(to: str, subject: str, template: str, *, job_id: str | None = None, **context) -> str:
    """Render now (the facts as they are at commit), deliver in a job. Returns the job id,
    which is also the message id, so a retried enqueue with the same job_id sends once."""
    body = render_template(f"email/{template}.txt", **context)
    job_id = job_id or f"email-{uuid.uuid4().hex}"
    jobs.enqueue(deliver_email, to, subject, body, job_id, job_id=job_id, retry_intervals=RETRY_INTERVALS)
    return job_id


@jobs.job
def deliver_email(to: str, subject: str, body: str, job_id: str) -> None:
    site = current_app.config["SITE_NAME"]
    message = Message(subject=f"[{site}] {subject}", recipients=[to], body=body,
                      sender=current_app.config["MAIL_DEFAULT_SENDER"])
    message.msgId = make_msgid(idstring=job_id, domain="edutradex.local")
    if current_app.config.get("MAIL_SERVER"):
        mail.send(message)
        log.info("email %r sent to %s", subject, to)
        return
    outbox = Path(current_app.config["MAIL_OUTBOX_DIR"])
    outbox.mkdir(parents=True, exist_ok=True)
    path = outbox / f"{job_id}.eml"
    path.write_bytes(message.as_bytes())
    log.info("email %r to %s written to %s (no MAIL_SERVER configured)", subject, to, path)
