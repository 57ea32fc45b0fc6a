"""Long-running services (the price feed, the settlement clock). Features register a
callable taking the app in app.extensions['background_services']; the embedded default
starts them inside the web process, production runs them as their own processes."""

from __future__ import annotations

import logging

from flask import Flask

from .extensions import socketio

log = logging.getLogger(__name__)


def start_background_services(app: Flask) -> list:
    tasks = []
    for service in app.extensions["background_services"]:
        log.info("starting background service %s", getattr(service, "__name__", service))
        tasks.append(socketio.start_background_task(service, app))
    return tasks
