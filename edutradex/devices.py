"""The device-id cookie: a long-lived, opaque random id given to every browser, so fair
play (competitions/fair_play.py) can see several accounts used from one browser. It proves
nothing about who is behind it and authorises nothing; it is HttpOnly, SameSite=Lax and
Secure exactly when the session cookie is."""

from __future__ import annotations

import re
import secrets

from flask import Flask, g, request

COOKIE_NAME = "edutradex_device"
MAX_AGE_SECONDS = 2 * 365 * 24 * 3600
_VALID = re.compile(r"^[0-9a-f]{32}$")


def current_device_id() -> str:
    """This browser's device id: its cookie's, or a new one the response will set."""
    if "device_id" not in g:
        sent = request.cookies.get(COOKIE_NAME, "")
        g.device_id_is_new = not _VALID.match(sent)
        g.device_id = secrets.token_hex(16) if g.device_id_is_new else sent
    return g.device_id


def init_app(app: Flask) -> None:
    @app.after_request
    def set_device_cookie(response):
        # Never on a response a shared cache may keep: it would hand one browser's id to all.
        if request.endpoint == "static" or response.cache_control.public:
            return response
        device_id = current_device_id()
        if g.device_id_is_new:
            response.set_cookie(COOKIE_NAME, device_id, max_age=MAX_AGE_SECONDS, httponly=True,
                                samesite=app.config.get("SESSION_COOKIE_SAMESITE") or "Lax",
                                secure=bool(app.config.get("SESSION_COOKIE_SECURE")))
        return response
