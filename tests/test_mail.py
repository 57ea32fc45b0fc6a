"""Every email is multipart/alternative: the plain text as before, and an HTML part from
the branded base template (site name, accent colour, inline CSS, no images) with the
user's text escaped. Sent through the real SMTP server."""

from __future__ import annotations

import re

from edutradex.extensions import db
from edutradex.mail import render_html
from edutradex.settings import set_setting
from edutradex.wallet import kyc
from tests.factories import make_admin, make_user
from tests.support.smtp import html_body, text_body

DETAILS = ("Ann Lee", "1990-05-17", "FR", "1 rue de Rivoli, 75001 Paris", "AB1234567")
HOSTILE_NAME = "Eve <script>alert(1)</script>"
HOSTILE_REASON = 'Blurred <img src="https://evil.example/x.png"> & unreadable'


def reject_hostile(smtp_server):
    admin, user = make_admin(), make_user("eve@example.com", name=HOSTILE_NAME)
    submission = kyc.submit_kyc(user.id, *DETAILS)
    kyc.reject_kyc(submission.id, admin.id, HOSTILE_REASON)
    [message] = smtp_server.wait_for(1)
    return message


def test_an_email_is_multipart_alternative_with_the_old_text_and_a_branded_html_part(mail_app, smtp_server):
    message = reject_hostile(smtp_server)
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.get_payload()] == ["text/plain", "text/html"]
    assert text_body(message) == (
        f"Hello {HOSTILE_NAME},\n\nWe could not verify your identity with the details you sent.\n"
        f"Reason: {HOSTILE_REASON}\n\nYou can correct your details and send them again from your wallet page.\n\n"
        "— EduTradeX")
    html = html_body(message)
    assert "EduTradeX" in html and "#2563eb" in html  # the site name and accent colour of the settings
    assert "We could not verify your identity with the details you sent." in html
    assert "You can correct your details and send them again from your wallet page." in html
    # user-provided text is escaped: shown, never interpreted
    assert "Eve &lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script" not in html
    assert "Blurred &lt;img src=" in html and "&amp; unreadable" in html and "<img" not in html
    # inline CSS only, no stylesheet, no image
    assert "<style" not in html and "<link" not in html and "stylesheet" not in html
    assert 'style="' in html


def test_the_html_follows_the_branding_settings(mail_app, smtp_server):
    set_setting("site_name", "ChartVolt")
    set_setting("accent_colour", "#ffcc00")
    db.session.commit()
    html = html_body(reject_hostile(smtp_server))
    assert "ChartVolt" in html and "#ffcc00" in html
    assert re.search(r"background-color:#ffcc00;color:#000000", html)  # black text on a light accent


def test_links_are_clickable_and_lists_stay_lists(mail_app):
    html = render_html("Subject & <more>", "Terms:\n- one <b>\n- two\n\nSee https://example.com/c/1?a=1&b=2.\n")
    assert "Subject &amp; &lt;more&gt;" in html
    assert re.search(r"<ul[^>]*><li[^>]*>one &lt;b&gt;</li><li[^>]*>two</li></ul>", html)
    assert ('<a href="https://example.com/c/1?a=1&amp;b=2" style="color:#2563eb;text-decoration:underline;">'
            "https://example.com/c/1?a=1&amp;b=2</a>.") in html
