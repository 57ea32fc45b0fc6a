"""Log lines: text for a person at a terminal (development), one JSON object per line for
a log pipeline (production's default, LOG_FORMAT=json).

A JSON line has time (UTC, ISO 8601), level, logger and message, the traceback under
"exception" when there is one, and, when written while a request is handled, its
request_id, method and path. The request id is the X-Request-ID the router sent (Heroku's
router sets one), or a new one; the response carries it back in X-Request-ID, so a user's
report can be matched with the lines."""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from datetime import UTC, datetime

from flask import Flask, g, has_request_context, request

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FORMATS = ("json", "text")
REQUEST_ID_HEADER = "X-Request-ID"
# What a router's request id looks like (Heroku: a UUID); anything else is replaced.
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{8,200}")
_OURS = "edutradex_handler"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if has_request_context():
            entry["request_id"] = g.get("request_id")
            entry["method"] = request.method
            entry["path"] = request.path
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure(app: Flask) -> None:
    """Set the root logger's format and level from LOG_FORMAT and LOG_LEVEL. Called before
    anything logs through app.logger (Flask adds its own text handler otherwise)."""
    log_format = app.config["LOG_FORMAT"]
    if log_format not in FORMATS:
        raise RuntimeError(f"LOG_FORMAT must be json or text, not {log_format!r}")
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    root = logging.getLogger()
    ours = [handler for handler in root.handlers if getattr(handler, _OURS, False)]
    # As logging.basicConfig: a process whose logging someone else set up (a test runner, a
    # host's own configuration) keeps it; otherwise one stream handler, ours.
    if ours or not root.handlers:
        if not ours:
            ours = [logging.StreamHandler(sys.stderr)]
            setattr(ours[0], _OURS, True)
            root.addHandler(ours[0])
        ours[0].setFormatter(formatter)
        root.setLevel(app.config["LOG_LEVEL"].upper())
        # Python's warnings (a library's deprecation notice at start-up) as log lines too,
        # not raw text between the JSON lines.
        logging.captureWarnings(log_format == "json")
    app.before_request(_take_request_id)
    app.after_request(_return_request_id)


def _take_request_id() -> None:
    sent = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = sent if REQUEST_ID.fullmatch(sent) else uuid.uuid4().hex


def _return_request_id(response):
    request_id = g.get("request_id")
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    return response
