"""The background-job queue as the admin sees it: RQ's registries when JOBS_MODE=rq."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import current_app

from ... import jobs
from ...errors import DomainError, NotFound
from .audit import Actor, record_audit

FAILED_SHOWN = 50


@dataclass(frozen=True)
class FailedJob:
    id: str
    func_name: str
    args: str
    ended_at: datetime | None
    error: str  # the last line of the traceback


@dataclass(frozen=True)
class QueueOverview:
    mode: str
    counts: dict[str, int] | None = None  # None when jobs run in-process
    workers: int = 0
    failed: tuple[FailedJob, ...] = ()


def jobs_mode() -> str:
    return current_app.config["JOBS_MODE"]


def queue_overview() -> QueueOverview:
    mode = jobs_mode()
    if mode != "rq":
        return QueueOverview(mode=mode)
    from rq import Worker
    from rq.registry import (
        DeferredJobRegistry,
        FailedJobRegistry,
        FinishedJobRegistry,
        ScheduledJobRegistry,
        StartedJobRegistry,
    )

    queue = jobs.queue()
    failed_registry = FailedJobRegistry(queue=queue)
    counts = {
        "queued": len(queue),
        "started": len(StartedJobRegistry(queue=queue)),
        "scheduled": len(ScheduledJobRegistry(queue=queue)),
        "deferred": len(DeferredJobRegistry(queue=queue)),
        "failed": len(failed_registry),
        "finished": len(FinishedJobRegistry(queue=queue)),
    }
    failed_ids = failed_registry.get_job_ids(0, FAILED_SHOWN - 1)
    failed = tuple(_failed_job(job) for job in queue.job_class.fetch_many(failed_ids, connection=queue.connection) if job)
    return QueueOverview(mode=mode, counts=counts, workers=Worker.count(queue=queue), failed=failed)


def _failed_job(job) -> FailedJob:
    result = job.latest_result()
    info = ((result.exc_string if result is not None else None) or "").strip().splitlines()
    args = ", ".join([repr(a) for a in job.args] + [f"{k}={v!r}" for k, v in job.kwargs.items()])
    return FailedJob(id=job.id, func_name=job.func_name, args=args[:200], ended_at=job.ended_at,
                     error=info[-1][:300] if info else "")


def retry_failed_job(actor: Actor, job_id: str) -> None:
    """Put a failed job back on its queue. RQ is not part of the database transaction: the
    entry is written, the job requeued, then the entry committed; a failed requeue rolls
    the entry back."""
    if jobs_mode() != "rq":
        raise DomainError("Jobs run in-process; there is no queue to retry from.", status_code=409)
    from rq.exceptions import InvalidJobOperation, NoSuchJobError
    from rq.registry import FailedJobRegistry

    from ...extensions import db

    registry = FailedJobRegistry(queue=jobs.queue())
    if job_id not in registry.get_job_ids():
        raise NotFound("That job is not in the failed list (it may have been retried already).")
    record_audit(actor, "job.retry", "job", job_id, before={"status": "failed"}, after={"status": "queued"})
    db.session.flush()
    try:
        registry.requeue(job_id)
    except (NoSuchJobError, InvalidJobOperation):
        db.session.rollback()
        raise NotFound("That job is no longer in the failed list.") from None
    db.session.commit()
