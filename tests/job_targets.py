"""Job functions for tests/test_jobs.py: module-level, receive ids, as real jobs do."""

import json
import os
from pathlib import Path

from sqlalchemy import text

from edutradex.auth.models import User
from edutradex.extensions import db
from edutradex.jobs import job


@job
def rename_user(user_id: int, name: str) -> None:
    user = db.session.get(User, user_id)
    user.name = name
    db.session.commit()


@job
def record_horse(path: str) -> None:
    """Write which process ran the job, its parent, its database session's backend, and
    whether the ORM's mappers were configured before the job's first query."""
    configured = not db.Model.registry._new_mappers
    backend = db.session.execute(text("SELECT pg_backend_pid()")).scalar()
    Path(path).write_text(json.dumps({"pid": os.getpid(), "ppid": os.getppid(), "backend": backend,
                                      "mappers_configured": configured}))


@job
def crash_horse() -> None:
    """A job that takes its process down without a Python exception (a segfault, an OOM kill)."""
    os._exit(3)


@job
def observe_settlement_lag(seconds: float) -> None:
    """Writes a metric sample, as a settlement job does (tests/test_metrics.py)."""
    from edutradex import metrics

    metrics.SETTLEMENT_LAG.observe(seconds)
