from datetime import timedelta

import pytest

from edutradex import jobs
from edutradex.extensions import db
from edutradex.types import utcnow
from tests.conftest import build_app
from tests.factories import make_user

from . import job_targets


def test_sync_mode_runs_at_once(app):
    with app.app_context():
        user_id = make_user().id
        jobs.enqueue(job_targets.rename_user, user_id, "Renamed")
        assert db.session.get(job_targets.User, user_id).name == "Renamed"


def test_thread_mode_runs_in_the_background(tmp_path):
    import time

    app = build_app(f"sqlite:///{tmp_path / 'j.db'}", JOBS_MODE="thread")
    with app.app_context():
        user_id = make_user().id
        jobs.enqueue(job_targets.rename_user, user_id, "Threaded", at=utcnow() + timedelta(milliseconds=200))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            db.session.expire_all()
            if db.session.get(job_targets.User, user_id).name == "Threaded":
                break
            time.sleep(0.05)
        assert db.session.get(job_targets.User, user_id).name == "Threaded"


@pytest.mark.redis
def test_rq_mode_runs_jobs_in_a_worker_with_their_own_app_context(tmp_path, redis_url, monkeypatch):
    from rq import SimpleWorker

    db_url = f"sqlite:///{tmp_path / 'rq.db'}"
    app = build_app(db_url, REDIS_URL=redis_url, JOBS_MODE="rq")
    with app.app_context():
        user_id = make_user().id
        assert jobs.enqueue(job_targets.rename_user, user_id, "From RQ", job_id=f"rename-{user_id}") == f"rename-{user_id}"
        # the same job id while the first is still queued: not enqueued twice
        jobs.enqueue(job_targets.rename_user, user_id, "Twice", job_id=f"rename-{user_id}")
        assert len(jobs.queue()) == 1
        connection = jobs.redis_connection()
    # The worker builds its own app from the environment, as `rq worker` does.
    monkeypatch.setenv("EDUTRADEX_ENV", "testing")
    monkeypatch.setattr("config.TestingConfig.SQLALCHEMY_DATABASE_URI", db_url)
    monkeypatch.setattr(jobs, "_worker_app", None)
    worker = SimpleWorker([jobs.QUEUE_NAME], connection=connection)
    assert worker.work(burst=True)
    with app.app_context():
        assert db.session.get(job_targets.User, user_id).name == "From RQ"
