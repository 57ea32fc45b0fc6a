"""Email: rendered from templates/email/<name>.txt, delivered by a background job.

Every email is multipart/alternative: the plain text of ``<name>.txt`` as is, and an HTML
part rendered from that same text into the branded ``email/_base.html`` (site name and
accent colour from the settings; inline CSS only and no images, as email clients ignore
stylesheets and block remote images). The text is escaped on the way into the HTML, so a
user's name with markup in it is shown, never interpreted.

With MAIL_SERVER set, Flask-Mail sends over SMTP. Without it (the embedded default) each
message is written as an .eml file to MAIL_OUTBOX_DIR and logged, so nothing is lost and
a developer can open it. Call send_email after the database commit it reports on."""

from __future__ import annotations

import logging
import re
import uuid
from email.charset import QP, Charset
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import make_msgid
from pathlib import Path

from flask import current_app, render_template
from flask_mail import Message
from markupsafe import Markup, escape

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
    try:
        html = render_html(subject, body)
    except Exception:  # the text alone still informs: a broken HTML part must not lose the email
        log.exception("email %r: HTML part failed, sending plain text only", subject)
        html = None
    job_id = job_id or f"email-{uuid.uuid4().hex}"
    jobs.enqueue(deliver_email, to, subject, body, job_id, html, job_id=job_id, retry_intervals=RETRY_INTERVALS)
    return job_id


_URL = re.compile(r"https?://[^\s<>\"']+")
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


def _links(line: str, colour: str) -> Markup:
    """One line of the plain text, escaped, with its http(s) URLs as links."""
    out, last = [], 0
    for match in _URL.finditer(line):
        url = match.group(0).rstrip(".,;:)")
        out.append(escape(line[last:match.start()]))
        out.append(Markup('<a href="{0}" style="color:{1};text-decoration:underline;">{0}</a>').format(url, colour))
        last = match.start() + len(url)
    out.append(escape(line[last:]))
    return Markup("").join(out)


def _blocks(body: str) -> list[dict]:
    """Paragraphs (blank-line separated) of the text; a paragraph of "- " lines is a list."""
    blocks = []
    for chunk in re.split(r"\n\s*\n", body.strip()):
        lines = [line.rstrip() for line in chunk.splitlines() if line.strip()]
        if not lines:
            continue
        items = [line[2:] for line in lines[1:] if line.startswith("- ")]
        if len(lines) > 1 and len(items) == len(lines) - 1:  # "Heading:" then "- item" lines
            blocks.append({"lines": [lines[0]], "bullets": None})
            blocks.append({"lines": None, "bullets": items})
        elif all(line.startswith("- ") for line in lines):
            blocks.append({"lines": None, "bullets": [line[2:] for line in lines]})
        else:
            blocks.append({"lines": lines, "bullets": None})
    return blocks


def render_html(subject: str, body: str) -> str:
    """The HTML alternative of a plain-text email: the branded base template around it."""
    from .contrast import readable_on, text_colour_on
    from .templating import branding

    site_name, accent = branding()
    if not _COLOUR.fullmatch(accent or ""):  # the env fallback is not validated like the setting
        accent = "#2563eb"
    return render_template("email/_base.html", subject=subject, blocks=_blocks(body), site_name=site_name,
                           accent=accent, accent_text=text_colour_on(accent),
                           link_colour=readable_on(accent, "#ffffff"), email_links=_links)


class _Message(Message):
    """Flask-Mail wraps text + HTML in multipart/mixed around a multipart/alternative even
    without attachments; an email without attachments is the multipart/alternative itself.
    The HTML part is quoted-printable: SMTP refuses lines over 998 characters, and an HTML
    line can be as long as a paragraph."""

    def as_bytes(self) -> bytes:
        """What Flask-Mail hands to smtplib, which sends bytes as they are: CRLF line ends,
        as SMTP requires (with bare LFs a server sees one endless line)."""
        return self._message().as_bytes(policy=compat32.clone(linesep="\r\n"))

    def eml_bytes(self) -> bytes:
        """The message as an .eml file (LF line ends, as before)."""
        return self._message().as_bytes()

    def _mimetext(self, text, subtype="plain"):
        if subtype != "html":
            return super()._mimetext(text, subtype)
        charset = Charset("utf-8")
        charset.body_encoding = QP
        return MIMEText(text, _subtype=subtype, _charset=charset)

    def _message(self):
        msg = super()._message()
        parts = msg.get_payload() if msg.is_multipart() else []
        if msg.get_content_type() == "multipart/mixed" and len(parts) == 1 \
                and parts[0].get_content_type() == "multipart/alternative":
            inner = parts[0]
            for key, value in msg.items():
                if key.lower() not in ("content-type", "mime-version", "content-transfer-encoding"):
                    inner[key] = value
            return inner
        return msg


@jobs.job
def deliver_email(to: str, subject: str, body: str, job_id: str, html: str | None = None) -> None:
    site = current_app.config["SITE_NAME"]
    message = _Message(subject=f"[{site}] {subject}", recipients=[to], body=body, html=html,
                      sender=current_app.config["MAIL_DEFAULT_SENDER"])
    message.msgId = make_msgid(idstring=job_id, domain="edutradex.local")
    if current_app.config.get("MAIL_SERVER"):
        mail.send(message)
        log.info("email %r sent to %s", subject, to)
        return
    outbox = Path(current_app.config["MAIL_OUTBOX_DIR"])
    outbox.mkdir(parents=True, exist_ok=True)
    path = outbox / f"{job_id}.eml"
    path.write_bytes(message.eml_bytes())
    log.info("email %r to %s written to %s (no MAIL_SERVER configured)", subject, to, path)
