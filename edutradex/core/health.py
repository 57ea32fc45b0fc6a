"""Health of the parts the platform needs. Features register more checks (the price feed)
in app.extensions['health_checks'] as name -> callable returning (ok, detail).

Anyone may ask whether the platform is healthy; the details (error text from the database
or Redis, queue and socket counters, the feed's timings) are for admins and for monitors
that send the HEALTHZ_TOKEN."""

from __future__ import annotations

import hmac

from flask import current_app, request
from flask_login import current_user
from sqlalchemy import text

from .. import jobs
from ..extensions import db


def check_database() -> tuple[bool, dict]:
    try:
        db.session.execute(text("SELECT 1"))
        return True, {"backend": db.engine.dialect.name}
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
        db.session.rollback()
        return False, {"error": str(exc).splitlines()[0]}


def check_redis() -> tuple[bool, dict]:
    url = current_app.config["REDIS_URL"]
    if not url:
        return True, {"configured": False}
    try:
        jobs.redis_connection().ping()
        return True, {"configured": True}
    except Exception as exc:  # noqa: BLE001
        return False, {"configured": True, "error": str(exc)}


TOKEN_HEADER = "X-Healthz-Token"


def sent_token() -> str | None:
    """The token in X-Healthz-Token, or as a bearer token (what Prometheus sends with its
    scrape configuration's `authorization` credentials)."""
    sent = request.headers.get(TOKEN_HEADER)
    if sent:
        return sent
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return credentials.strip() or None


def may_see_details() -> bool:
    token = current_app.config.get("HEALTHZ_TOKEN")
    sent = sent_token()
    if token and sent and hmac.compare_digest(sent.encode(), token.encode()):
        return True
    try:  # loading the signed-in user needs the database, which may be what is down
        return bool(current_user.is_authenticated and current_user.is_admin)
    except Exception:  # noqa: BLE001
        db.session.rollback()
        return False


def run_health_checks() -> tuple[bool, dict]:
    checks = {"database": check_database, "redis": check_redis, "jobs": jobs.queue_status}
    checks.update(current_app.extensions.get("health_checks", {}))
    report, healthy = {}, True
    for name, check in checks.items():
        try:
            ok, detail = check()
        except Exception as exc:  # noqa: BLE001
            ok, detail = False, {"error": str(exc)}
        report[name] = {"ok": ok, **detail}
        healthy = healthy and ok
    return healthy, report
