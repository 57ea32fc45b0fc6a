"""One way to run background work.

- ``rq``: RQ on Redis (production), worked by ``flask worker`` (the Procfile's ``worker``):
  the app built once, and every job run in that process on warm connections (``--fork``:
  each job in a fork of it instead, which starts with everything imported). Jobs at a given time use RQ's built-in scheduler,
  which ``flask worker`` runs. While no worker is registered for the queue
  (a deploy with only `web` dynos), the enqueuing process runs the job itself, as in
  ``thread`` mode (JOBS_IN_PROCESS_WITHOUT_WORKER, on by default): an RQ queue without
  a worker would hold settlements, emails and payouts for ever.
- ``thread``: in-process green threads (the embedded default; no Redis needed).
- ``sync``: run at once in the caller (tests).

Jobs receive ids, never ORM objects, and run inside an app context of their own
(``@job``), whichever way they were started.
"""

from __future__ import annotations

import functools
import gc
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click
from flask import Flask, current_app, has_app_context

from . import metrics
from .extensions import db, socketio

log = logging.getLogger(__name__)

QUEUE_NAME = "default"
WORKER_CHECK_SECONDS = 2.0  # how long an answer to "is an RQ worker registered?" is reused
_worker_app: Flask | None = None


def init_app(app: Flask) -> None:
    mode = app.config["JOBS_MODE"]
    if mode not in {"rq", "thread", "sync"}:
        raise RuntimeError(f"JOBS_MODE must be rq, thread or sync, not {mode!r}")
    if mode == "rq" and not app.config["REDIS_URL"]:
        raise RuntimeError("JOBS_MODE=rq needs REDIS_URL")

    @app.cli.command("worker", with_appcontext=False)
    @click.argument("queues", nargs=-1)
    @click.option("--burst", is_flag=True, help="Quit once the queues are empty.")
    @click.option("--with-scheduler/--without-scheduler", default=True, show_default=True,
                  help="Also run RQ's scheduler (jobs enqueued with `at`, retries).")
    @click.option("--fork/--no-fork", default=False, show_default=True,
                  help="Each job in a fork of this process (a crash takes only the job down, each job "
                       "pays a new database backend and cold caches), or all jobs in this process (the "
                       "default: warm connections, a lone settlement in tens of ms; a crash stops the "
                       "worker, and the host restarts it).")
    def worker_command(queues, burst, with_scheduler, fork):
        """Work the RQ queues (default: the app's queue) with this app, built once here."""
        if app.config["JOBS_MODE"] != "rq":
            raise click.UsageError("flask worker needs REDIS_URL (and JOBS_MODE=rq, its default with REDIS_URL)")
        run_worker(app, queues or (QUEUE_NAME,), burst=burst, with_scheduler=with_scheduler, fork=fork)


def run_worker(app: Flask, queue_names: tuple[str, ...], burst: bool = False, with_scheduler: bool = True,
               fork: bool = False) -> bool:
    from sqlalchemy.orm import configure_mappers

    with app.app_context():
        connection = redis_connection()
        # What SQLAlchemy does lazily at the first query, done here once for every job: the
        # mappers' configuration (~40 % of a small settlement job in each fork, measured)
        # and the dialect's set-up on a first connection; then no connection stays open for
        # a fork to inherit (see AppWorker).
        configure_mappers()
        for engine in db.engines.values():
            engine.connect().close()
            engine.dispose()
    worker = app_worker_class(fork)(list(queue_names), connection=connection, app=app)
    if fork:
        # The forks share this process's memory pages until they write to them: keep the
        # collector from touching (and so copying) every object the app holds.
        gc.freeze()
    return worker.work(burst=burst, with_scheduler=with_scheduler, logging_level="INFO")


def app_worker_class(fork: bool = True):
    from rq import SimpleWorker, Worker

    class AppWorker(Worker if fork else SimpleWorker):
        """RQ's worker with the imported code and the built app in its (parent) process, so
        a job costs its work, not the ~1.3 s of imports and create_app() that `rq worker`
        pays in every job's fork. Forking, a job runs in a fork that starts ready and a job
        that crashes takes only that fork down; not forking, jobs run here, one after the
        other, on warm connections."""

        def __init__(self, *args, app: Flask, **kwargs):
            super().__init__(*args, **kwargs)
            self.app = app

        def main_work_horse(self, job, queue):
            # SQLAlchemy, "Using Connection Pools with Multiprocessing": a fork must not use
            # the parent's pooled connections; forget them without closing the parent's.
            with self.app.app_context():
                for engine in db.engines.values():
                    engine.dispose(close=False)
            metrics.forked_for_job()
            super().main_work_horse(job, queue)

        def perform_job(self, job, queue):
            with self.app.app_context():
                return super().perform_job(job, queue)

    return AppWorker


def job(func: Callable) -> Callable:
    """Give a job function an app context when it runs outside one (in an RQ worker)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if has_app_context():
            return func(*args, **kwargs)
        with _app_for_worker().app_context():
            return func(*args, **kwargs)

    return wrapper


def _app_for_worker() -> Flask:
    global _worker_app
    if _worker_app is None:
        from . import create_app

        _worker_app = create_app()
    return _worker_app


def redis_connection():
    from redis import Redis

    connections = current_app.extensions.setdefault("redis_connections", {})
    url = current_app.config["REDIS_URL"]
    if url not in connections:
        connections[url] = Redis.from_url(url)
    return connections[url]


def queue():
    from rq import Queue

    return Queue(QUEUE_NAME, connection=redis_connection())


def enqueue(func: Callable, *args: Any, job_id: str | None = None, at: datetime | None = None,
            retry_intervals: tuple[int, ...] = (), **kwargs: Any) -> str | None:
    """Run ``func(*args, **kwargs)`` in the background, at ``at`` if given (aware UTC).

    ``job_id`` makes the enqueue idempotent: a second enqueue with the same id while the
    first is still known (queued in RQ, or running in this process) adds nothing.
    ``retry_intervals`` (seconds) retries a failing job that many times, backing off (RQ
    mode; its scheduler runs the retries)."""
    mode = current_app.config["JOBS_MODE"]
    if mode == "sync":
        func(*args, **kwargs)
        return job_id
    if mode == "thread" or not worker_available():
        return _start_in_process(func, args, kwargs, at, job_id)
    q = queue()
    if job_id is not None:
        existing = q.fetch_job(job_id)
        if existing is not None and existing.get_status(refresh=True) not in ("finished", "failed", "canceled", "stopped"):
            return job_id
    options = {"job_id": job_id, "failure_ttl": 7 * 24 * 3600}
    if retry_intervals:
        from rq import Retry

        options["retry"] = Retry(max=len(retry_intervals), interval=list(retry_intervals))
    if at is not None:
        q.enqueue_at(at, func, *args, **kwargs, **{k: v for k, v in options.items() if v is not None})
    else:
        q.enqueue(func, *args, **kwargs, **{k: v for k, v in options.items() if v is not None})
    return job_id


def registered_workers() -> int:
    """RQ workers registered for the queue whose registration has not expired."""
    from rq import Worker

    return len(Worker.all(queue=queue()))


def worker_available() -> bool:
    """Whether jobs should go to RQ: a worker is registered, or running them in-process
    without one is turned off. The answer is reused for WORKER_CHECK_SECONDS."""
    config = current_app.config
    if not config["JOBS_IN_PROCESS_WITHOUT_WORKER"]:
        return True
    seen = current_app.extensions.setdefault("rq_workers_seen", {"checked_at": None, "workers": None})
    now = time.monotonic()
    if seen["checked_at"] is None or now - seen["checked_at"] >= WORKER_CHECK_SECONDS:
        workers = registered_workers()
        if workers == 0 and seen["workers"] != 0:
            log.warning("no RQ worker is registered on queue %r: this process runs jobs itself "
                        "(start a `worker` process to move them to RQ)", QUEUE_NAME)
        elif workers and seen["workers"] == 0:
            log.info("%d RQ worker(s) registered again: jobs go to the queue", workers)
        seen.update(checked_at=now, workers=workers)
    return seen["workers"] > 0


def _start_in_process(func: Callable, args: tuple, kwargs: dict, at: datetime | None, job_id: str | None) -> str | None:
    app = current_app._get_current_object()
    running = app.extensions.setdefault("jobs_in_process", set())
    if job_id is not None:
        if job_id in running:
            return job_id
        running.add(job_id)
    metrics.JOBS_IN_PROCESS.inc()
    socketio.start_background_task(_run_in_thread, app, func, args, kwargs, at, job_id)
    return job_id


def _run_in_thread(app: Flask, func: Callable, args: tuple, kwargs: dict, at: datetime | None,
                   job_id: str | None = None) -> None:
    try:
        if at is not None:
            delay = (at - datetime.now(UTC)).total_seconds()
            if delay > 0:
                socketio.sleep(delay)
        with app.app_context():
            try:
                func(*args, **kwargs)
            except Exception:
                metrics.JOBS_IN_PROCESS_FAILED.inc()
                log.exception("background job %s failed", getattr(func, "__name__", func))
    finally:
        metrics.JOBS_IN_PROCESS.dec()
        app.extensions.get("jobs_in_process", set()).discard(job_id)


def queue_status() -> tuple[bool, dict]:
    mode = current_app.config["JOBS_MODE"]
    if mode != "rq":
        return True, {"mode": mode}
    from rq import Worker
    from rq.registry import FailedJobRegistry, ScheduledJobRegistry

    q = queue()
    workers = len(Worker.all(queue=q))
    in_process = workers == 0 and current_app.config["JOBS_IN_PROCESS_WITHOUT_WORKER"]
    return workers > 0 or in_process, {
        "mode": "rq",
        "queued": len(q),
        "scheduled": len(ScheduledJobRegistry(queue=q)),
        "failed": len(FailedJobRegistry(queue=q)),
        "workers": workers,
        "in_process": in_process,
    }
