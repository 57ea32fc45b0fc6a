import json
import os
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from edutradex import jobs
from edutradex.extensions import db
from edutradex.types import utcnow
from tests.conftest import build_app
from tests.factories import make_user
from tests.support.deploy import ROOT, procfile, production_env

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


# ---- rq mode without a registered worker: the enqueuing process runs the job ----------------

def wait_for_name(app, user_id: int, name: str) -> bool:
    deadline = time.monotonic() + 5
    with app.app_context():
        while time.monotonic() < deadline:
            db.session.expire_all()
            if db.session.get(job_targets.User, user_id).name == name:
                return True
            time.sleep(0.05)
    return False


@pytest.mark.redis
def test_rq_mode_runs_jobs_in_process_while_no_worker_is_registered(tmp_path, redis_url, monkeypatch):
    from rq import SimpleWorker

    monkeypatch.setattr(jobs, "WORKER_CHECK_SECONDS", 0)
    app = build_app(f"sqlite:///{tmp_path / 'w.db'}", REDIS_URL=redis_url, JOBS_MODE="rq",
                    JOBS_IN_PROCESS_WITHOUT_WORKER=True)
    with app.app_context():
        user_id = make_user().id
        assert jobs.registered_workers() == 0
        jobs.enqueue(job_targets.rename_user, user_id, "No worker", job_id=f"rename-{user_id}-1")
        assert len(jobs.queue()) == 0  # not left in a queue nobody reads
    assert wait_for_name(app, user_id, "No worker")

    worker = SimpleWorker([jobs.QUEUE_NAME], connection=jobs_connection(app))
    worker.register_birth()
    try:
        with app.app_context():
            assert jobs.registered_workers() == 1
            jobs.enqueue(job_targets.rename_user, user_id, "Queued", job_id=f"rename-{user_id}-2")
            assert len(jobs.queue()) == 1  # a worker is there: RQ's job
            health = jobs.queue_status()
            assert health == (True, {**health[1], "workers": 1, "in_process": False})
    finally:
        worker.register_death()
    with app.app_context():
        jobs.enqueue(job_targets.rename_user, user_id, "Worker gone", at=utcnow() + timedelta(milliseconds=100))
        ok, detail = jobs.queue_status()
        assert ok and detail["workers"] == 0 and detail["in_process"] is True
    assert wait_for_name(app, user_id, "Worker gone")


@pytest.mark.redis
def test_without_the_fallback_rq_mode_queues_and_health_says_no_worker(tmp_path, redis_url):
    app = build_app(f"sqlite:///{tmp_path / 'n.db'}", REDIS_URL=redis_url, JOBS_MODE="rq",
                    JOBS_IN_PROCESS_WITHOUT_WORKER=False)
    with app.app_context():
        jobs.enqueue(job_targets.rename_user, 1, "Waits")
        assert len(jobs.queue()) == 1
        ok, detail = jobs.queue_status()
        assert not ok and detail["in_process"] is False


def test_in_process_jobs_with_the_same_id_run_once_at_a_time(tmp_path):
    app = build_app(f"sqlite:///{tmp_path / 'd.db'}", JOBS_MODE="thread")
    release, calls = threading.Event(), []

    def slow(n):
        calls.append(n)
        release.wait(5)

    with app.app_context():
        jobs.enqueue(slow, 1, job_id="same")
        jobs.enqueue(slow, 2, job_id="same")  # the first still runs: nothing new
        jobs.enqueue(slow, 3, job_id="other")
    time.sleep(0.3)
    release.set()
    time.sleep(0.2)
    assert sorted(calls) == [1, 3]
    assert app.extensions["jobs_in_process"] == set()


def jobs_connection(app):
    with app.app_context():
        return jobs.redis_connection()


# ---- the Procfile's worker: `flask worker`, a real process ----------------------------------

def work_in_burst(tmp_path, postgres_url: str, redis_url: str, enqueue, *options: str) -> int:
    """Enqueue with `enqueue(app)`, then run the Procfile's worker command (plus `options`)
    until the queue is empty, as a deploy would, with an app factory that records each
    build. Returns the pid of the one process that built an app."""
    app = build_app(postgres_url, REDIS_URL=redis_url, JOBS_MODE="rq")
    with app.app_context():
        enqueue(app)
        db.engine.dispose()
    builds = tmp_path / "app-builds"
    env = {**production_env(postgres_url, REDIS_URL=redis_url, FLASK_APP="tests.support.counted_app:create_app",
                            APP_BUILDS_FILE=str(builds)),
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", os.defpath)])}
    done = subprocess.run(["sh", "-c", " ".join([procfile()["worker"], *options, "--burst"])], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    [builder] = builds.read_text().split()  # one app, built once
    return int(builder)


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.slow
def test_flask_worker_fork_builds_the_app_once_and_forks_a_ready_horse_per_job(tmp_path, postgres_url, redis_url):
    """`rq worker` built the app (~1.3 s of imports and create_app) in every job's forked
    horse. `flask worker --fork` builds it once, in the parent, before forking: every job
    runs in a horse of that parent, none builds an app, and a horse that dies fails only its job."""
    records = [tmp_path / f"job-{n}.json" for n in range(10)]
    crashed = []

    def enqueue(app):
        for path in records[:5]:
            jobs.enqueue(job_targets.record_horse, str(path))
        crashed.append(jobs.queue().enqueue(job_targets.crash_horse).id)
        for path in records[5:]:
            jobs.enqueue(job_targets.record_horse, str(path))

    builder = work_in_burst(tmp_path, postgres_url, redis_url, enqueue, "--fork")
    ran = [json.loads(path.read_text()) for path in records]
    assert {job["ppid"] for job in ran} == {builder}  # every job in a horse of the builder
    assert len({job["pid"] for job in ran}) == len(ran) and builder not in {job["pid"] for job in ran}
    assert all(job["backend"] and job["mappers_configured"] for job in ran)
    from redis import Redis
    from rq.job import Job

    assert Job.fetch(crashed[0], connection=Redis.from_url(redis_url)).get_status() == "failed"


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.parametrize("options", [(), ("--no-fork",)], ids=["procfile", "no-fork"])
def test_the_procfile_worker_runs_every_job_in_itself_on_one_warm_connection(tmp_path, postgres_url, redis_url,
                                                                               options):
    """The Procfile's `flask worker` (and `--no-fork`, said explicitly): the app built once
    and every job run in that process, on the pool's one warm database connection."""
    records = [tmp_path / f"job-{n}.json" for n in range(5)]

    def enqueue(app):
        for path in records:
            jobs.enqueue(job_targets.record_horse, str(path))

    builder = work_in_burst(tmp_path, postgres_url, redis_url, enqueue, *options)
    ran = [json.loads(path.read_text()) for path in records]
    assert {job["pid"] for job in ran} == {builder}
    assert len({job["backend"] for job in ran}) == 1  # the pool's connection, reused


def test_flask_worker_without_redis_says_what_it_needs(runner):
    result = runner.invoke(args=["worker", "--burst"])
    assert result.exit_code == 2
    assert "flask worker needs REDIS_URL" in result.output
