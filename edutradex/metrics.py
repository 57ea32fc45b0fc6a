"""Prometheus metrics, served at /metrics (core/views.py) to admins and to a scraper that
sends the HEALTHZ_TOKEN.

Two kinds of figures:
- samples written where things happen (requests, placements, settlements and their lag,
  Socket.IO clients and emits, in-process jobs), by whichever process does them;
- figures read when /metrics is scraped (the feed's tick age per market, the RQ queue's
  depth, failed jobs and workers), from the quote store and Redis, so any web process
  answers for the whole deploy and a dead feed shows as a growing age.

One process (the embedded default) keeps its samples in memory. With several processes on
one host (web processes, the feed, the worker), set PROMETHEUS_MULTIPROC_DIR to a directory
they all share, empty at start: each process writes its samples to files there and
/metrics adds them up (prometheus_client's multiprocess mode). The variable must be in the
environment before the processes start (prometheus_client reads it when this module is
imported). An RQ worker's forked job processes (one per job) write into one set of files
per worker, not one per job, so the directory does not grow with the number of jobs.

Labels are bounded: requests by the Flask endpoint (the URL rule's name, never the path),
method and status; emits by event name; placements by kind and outcome.
"""

from __future__ import annotations

import atexit
import bisect
import logging
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from flask import Flask, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    values,
)
from prometheus_client.core import GaugeMetricFamily

from .errors import DomainError

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

# (pid, identifier) of an RQ work horse: see forked_for_job
JOB_SUFFIX = "_job"
_job_process: tuple[int, str] | None = None


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV, "").strip() or None


def _process_identifier() -> str:
    pid = os.getpid()
    if _job_process is not None and _job_process[0] == pid:
        return _job_process[1]
    return str(pid)


def forked_for_job() -> None:
    """Called in an RQ work horse (a fork made for one job): its samples go to files named
    after its parent worker, which runs one horse at a time, instead of new files per job.
    Each horse reads the files' values when it first writes, so none overwrites another's."""
    global _job_process
    _job_process = (os.getpid(), f"{os.getppid()}{JOB_SUFFIX}")


def _use_multiprocess_files(directory: str) -> None:
    os.makedirs(directory, exist_ok=True)
    values.ValueClass = values.MultiProcessValue(_process_identifier)
    _forget_dead_processes(directory)
    atexit.register(_forget_this_process)


def _forget_dead_processes(directory: str) -> None:
    """Connected-client and running-job gauges of processes that died without saying so
    (a crash, a SIGKILL) would count for ever: drop those of processes no longer running
    (on this host: the directory is shared by one host's processes only)."""
    from prometheus_client.multiprocess import mark_process_dead

    for name in os.listdir(directory):
        if not name.startswith("gauge_live") or not name.endswith(".db"):
            continue
        identifier = name[:-3].removesuffix(JOB_SUFFIX).rsplit("_", 1)[-1]
        if identifier.isdigit() and not _running(int(identifier)):
            mark_process_dead(identifier, directory)
            mark_process_dead(identifier + JOB_SUFFIX, directory)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _forget_this_process() -> None:
    from prometheus_client.multiprocess import mark_process_dead

    directory = multiprocess_dir()
    if directory and os.path.isdir(directory) and _job_process is None:  # a work horse leaves by os._exit anyway
        mark_process_dead(str(os.getpid()), directory)
        mark_process_dead(f"{os.getpid()}{JOB_SUFFIX}", directory)  # its work horses' gauges


if multiprocess_dir():
    _use_multiprocess_files(multiprocess_dir())
else:
    values.ValueClass = values.MutexValue
disable_created_metrics()  # a *_created series per label set doubles the series for no use here

REQUEST_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PLACEMENT_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5)
LAG_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUESTS = Counter("edutradex_http_requests", "HTTP requests answered, by Flask endpoint, method and status.",
                   ["endpoint", "method", "status"])
REQUEST_SECONDS = Histogram("edutradex_http_request_duration_seconds",
                            "Time to answer an HTTP request (to the response's headers), by Flask endpoint and method.",
                            ["endpoint", "method"], buckets=REQUEST_BUCKETS)
PLACEMENTS = Counter("edutradex_placements", "Rise/fall trades and CFD orders asked for, by kind "
                     "(rise_fall, cfd) and outcome (placed, refused: a domain error, error: a failure).",
                     ["kind", "outcome"])
PLACEMENT_SECONDS = Histogram("edutradex_placement_duration_seconds",
                              "Time the placement service took (validation, the transaction), by kind.",
                              ["kind"], buckets=PLACEMENT_BUCKETS)
SETTLEMENTS = Counter("edutradex_settlements", "Rise/fall trades settled, by result (WIN, LOSS, TIE).", ["result"])
SETTLEMENT_LAG = Histogram("edutradex_settlement_lag_seconds",
                           "Time from a rise/fall trade's expiry to the commit that settled it.", buckets=LAG_BUCKETS)
SOCKETIO_CLIENTS = Gauge("edutradex_socketio_clients", "Socket.IO clients connected.", multiprocess_mode="livesum")
SOCKETIO_EMITS = Counter("edutradex_socketio_emits", "Socket.IO events emitted (one per emit to a room or "
                         "client, whatever the number of recipients), by event.", ["event"])
JOBS_IN_PROCESS = Gauge("edutradex_jobs_in_process", "Background jobs run by a process itself (the embedded "
                        "runner, or RQ mode without a worker) that have not finished.", multiprocess_mode="livesum")
JOBS_IN_PROCESS_FAILED = Counter("edutradex_jobs_in_process_failed",
                                 "Background jobs run by a process itself that raised.")


_children: dict = {}


def _child(metric, *labels: str):
    """``metric.labels(*labels)``, remembered: the label values are few (see the module's
    doc), and the look-up is half the cost of a sample on the request path."""
    key = (id(metric), labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def init_app(app: Flask) -> None:
    app.before_request(_start_timer)
    app.after_request(_count_request)


def _start_timer() -> None:
    g.metrics_started = time.perf_counter()


def _count_request(response):
    started = g.pop("metrics_started", None)
    if started is not None:
        rule = request.url_rule
        endpoint = rule.endpoint if rule is not None else "unmatched"
        method = request.method if request.method in METHODS else "other"
        _child(REQUEST_SECONDS, endpoint, method).observe(time.perf_counter() - started)
        _child(REQUESTS, endpoint, method, str(response.status_code)).inc()
    return response


@contextmanager
def placing(kind: str) -> Iterator[None]:
    """Around a placement service call: counts it by outcome and times it."""
    started = time.perf_counter()
    outcome = "error"
    try:
        yield
        outcome = "placed"
    except DomainError:
        outcome = "refused"
        raise
    finally:
        _child(PLACEMENT_SECONDS, kind).observe(time.perf_counter() - started)
        _child(PLACEMENTS, kind, outcome).inc()


def settled(trades: Iterable, now_ms: int) -> None:
    """After a settlement's commit: each trade's lag after its expiry."""
    results: dict[str, int] = {}
    lags = []
    for trade in trades:
        lags.append(max(0, now_ms - trade.expires_ms) / 1000)
        results[trade.result] = results.get(trade.result, 0) + 1
    observe_many(SETTLEMENT_LAG, lags)
    for result, count in results.items():
        _child(SETTLEMENTS, result).inc(count)


def observe_many(histogram, amounts: list[float]) -> None:
    """``histogram.observe(amount)`` for every amount, writing each bucket touched once: a
    10,000-trade burst costs a few writes, not 20,000 (80 ms in multiprocess mode). Uses
    the histogram's internals (prometheus-client is pinned in requirements.txt; the test
    compares this with observe)."""
    bounds = histogram._upper_bounds  # ascending, the last +Inf
    counts = [0] * len(bounds)
    for amount in amounts:
        counts[bisect.bisect_left(bounds, amount)] += 1
    if amounts:
        histogram._sum.inc(sum(amounts))
    for bucket, count in zip(histogram._buckets, counts, strict=True):
        if count:
            bucket.inc(count)


def count_emits(server) -> None:
    """Count every emit of a python-socketio server (this process's emits: the feed's ticks
    and boards, settlements, notices), once per emit and not per recipient."""
    emit = server.emit

    def counted_emit(event, *args, **kwargs):
        _child(SOCKETIO_EMITS, event).inc()
        return emit(event, *args, **kwargs)

    server.emit = counted_emit


# ---- /metrics -----------------------------------------------------------------------------

class _Families:
    def __init__(self, families: list):
        self.families = families

    def collect(self):
        return self.families


def exposition() -> bytes:
    """The Prometheus text of every process's samples (this one's, or all those that share
    PROMETHEUS_MULTIPROC_DIR) and of the figures read now."""
    if multiprocess_dir():
        from prometheus_client.multiprocess import MultiProcessCollector

        _forget_dead_processes(multiprocess_dir())  # a web process killed a moment ago had clients
        samples = CollectorRegistry()
        MultiProcessCollector(samples)
    else:
        from prometheus_client import REGISTRY

        samples = REGISTRY
    now = CollectorRegistry()
    now.register(_Families(scrape_time_families()))
    return generate_latest(samples) + generate_latest(now)


def scrape_time_families() -> list:
    families = []
    failed = GaugeMetricFamily("edutradex_metrics_read_failed", "1 when a part of the figures read at scrape "
                               "time could not be read (Redis or the database down): its metrics are absent.",
                               labels=["part"])
    for part, read in (("feed", _feed_families), ("queue", _queue_families)):
        try:
            families.extend(read())
            failed.add_metric([part], 0)
        except Exception as exc:  # noqa: BLE001 - a part that cannot be read is absent; /healthz says why
            # a warning, not an error: a scrape every few seconds while Redis is down would
            # otherwise report the same failure to Sentry each time
            log.warning("metrics: the %s figures could not be read: %s", part, exc)
            failed.add_metric([part], 1)
    return [*families, failed]


def _feed_families() -> list:
    from .extensions import db
    from .market.feed import read_heartbeat_with_age
    from .market.models import Market
    from .market.quotes import latest_quote, now_ms

    symbols = db.session.scalars(db.select(Market.symbol).where(Market.active.is_(True)).order_by(Market.symbol)).all()
    db.session.rollback()
    ages = GaugeMetricFamily("edutradex_feed_tick_age_seconds",
                             "Age of the latest price of each active market (absent: no price yet).", labels=["symbol"])
    now = now_ms()
    for symbol in symbols:
        quote = latest_quote(symbol)
        if quote is not None:
            ages.add_metric([symbol], max(0, now - quote.ts_ms) / 1000)
    heartbeat = GaugeMetricFamily("edutradex_feed_heartbeat_age_seconds",
                                  "Age of the price authority's last heartbeat (absent: no feed running).")
    _beat, age_ms, _read_at = read_heartbeat_with_age(now_ms)
    if age_ms is not None:
        heartbeat.add_metric([], age_ms / 1000)
    return [ages, heartbeat]


def _queue_families() -> list:
    if current_app.config["JOBS_MODE"] != "rq":
        return []
    from rq import Worker
    from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

    from .jobs import queue

    q = queue()
    figures = (
        ("edutradex_rq_queue_depth", "Jobs waiting in the RQ queue.", len(q)),
        ("edutradex_rq_started_jobs", "Jobs an RQ worker is running.", len(StartedJobRegistry(queue=q))),
        ("edutradex_rq_scheduled_jobs", "Jobs scheduled for later (at a time, or a retry).",
         len(ScheduledJobRegistry(queue=q))),
        ("edutradex_rq_failed_jobs", "Failed jobs kept in RQ's failed registry (kept 7 days).",
         len(FailedJobRegistry(queue=q))),
        ("edutradex_rq_workers", "RQ workers registered on the queue.", len(Worker.all(queue=q))),
    )
    families = []
    for name, help_text, value in figures:
        family = GaugeMetricFamily(name, help_text, labels=["queue"])
        family.add_metric([q.name], value)
        families.append(family)
    return families
