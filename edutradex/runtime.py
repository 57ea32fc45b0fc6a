"""Long-running services (the price feed, the settlement clock). Features register a
callable taking the app in app.extensions['background_services'].

- `flask feed run` (the Procfile's `feed`) starts them all at once; its feed stands by
  while another process holds the price-authority lock.
- A web process (wsgi.py, EMBEDDED_SERVICES on) runs them too, so that one `web` dyno is a
  whole platform. Without Redis it is the only process and starts them at once (the
  embedded default). With Redis it stands in for an absent `feed` process: each service
  starts when no process holds the price authority, and starts again if it ever returns
  (a feed that lost its lock), so a `feed` process, when there is one, keeps the job."""

from __future__ import annotations

import logging

from flask import Flask

from .extensions import socketio

log = logging.getLogger(__name__)

VACANCY_POLL_SECONDS = 1.0


def start_background_services(app: Flask) -> list:
    tasks = []
    for service in app.extensions["background_services"]:
        log.info("starting background service %s", _name(service))
        tasks.append(socketio.start_background_task(service, app))
    return tasks


def start_web_services(app: Flask) -> list:
    if not app.config["REDIS_URL"]:
        return start_background_services(app)
    log.info("web process on standby: it runs the price feed and the settlement clock whenever no feed process "
             "holds the price authority (EMBEDDED_SERVICES=0 turns this off)")
    app.extensions["web_stand_in"] = {"stopped": False}
    return [socketio.start_background_task(_stand_in, app)]


def stop_web_services(app: Flask) -> None:
    """Stop standing in: start nothing more (running services carry on until they return)."""
    app.extensions.setdefault("web_stand_in", {})["stopped"] = True


def authority_vacant(app: Flask) -> bool:
    """No process holds the price-authority lock (read only: the feed takes the lock)."""
    from . import jobs
    from .market.feed import LOCK_KEY

    with app.app_context():
        return not jobs.redis_connection().exists(LOCK_KEY)


def _stand_in(app: Flask) -> None:
    """Start every service that is not running, together, whenever the authority is vacant
    (together: once this process's feed holds the lock, the authority is no longer vacant)."""
    services = list(app.extensions["background_services"])
    running: set = set()

    def run(service) -> None:
        try:
            service(app)
        except Exception:
            log.exception("background service %s failed", _name(service))
        finally:
            running.discard(service)

    while not app.extensions["web_stand_in"]["stopped"]:
        idle = [service for service in services if service not in running]
        try:
            vacant = bool(idle) and authority_vacant(app)
        except Exception:  # Redis unreachable: /healthz says so; look again
            log.exception("cannot tell whether a process holds the price authority")
            vacant = False
        if vacant:
            log.warning("no process holds the price authority (no `feed` process running?): this web process "
                        "starts %s", ", ".join(_name(service) for service in idle))
            for service in idle:
                running.add(service)
                socketio.start_background_task(run, service)
        socketio.sleep(VACANCY_POLL_SECONDS)


def _name(service) -> str:
    return getattr(service, "__name__", repr(service))
