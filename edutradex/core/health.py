"""Health of the parts the platform needs. Features register more checks (the price feed)
in app.extensions['health_checks'] as name -> callable returning (ok, detail)."""

from __future__ import annotations

from flask import current_app
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
