"""A real SMTP server for tests (aiosmtpd on a free loopback port) that keeps what it receives."""

from __future__ import annotations

import email
import time
from email.message import Message

from .servers import free_port


def part(message: Message, content_type: str) -> str:
    """The decoded text of a message's ``content_type`` part (text/plain or text/html):
    every email is multipart/alternative. Line ends are LF (SMTP carries CRLF)."""
    for sub in message.walk():
        if sub.get_content_type() == content_type and not sub.is_multipart():
            return sub.get_payload(decode=True).decode(sub.get_content_charset() or "utf-8").replace("\r\n", "\n")
    raise AssertionError(f"no {content_type} part in {message.get_content_type()} message {message['Subject']!r}")


def text_body(message: Message) -> str:
    return part(message, "text/plain")


def html_body(message: Message) -> str:
    return part(message, "text/html")


class SmtpServer:
    def __init__(self):
        self.host = "127.0.0.1"
        self.port = free_port()
        self.messages: list[Message] = []
        self._controller = None

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        message = email.message_from_bytes(envelope.content)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 Message accepted for delivery"

    def start(self) -> SmtpServer:
        from aiosmtpd.controller import Controller

        self._controller = Controller(self, hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()

    @property
    def app_config(self) -> dict:
        """Overrides for create_app/build_app so Flask-Mail sends here."""
        return {"MAIL_SERVER": self.host, "MAIL_PORT": self.port, "MAIL_USE_TLS": False, "MAIL_SUPPRESS_SEND": False}

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in self.messages]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Message]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.messages
