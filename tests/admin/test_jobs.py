"""The jobs page: "in-process" in the embedded default; RQ's queue and failed jobs, with
retry, when JOBS_MODE=rq (against a real redis-server)."""

import pytest

from edutradex import jobs
from edutradex.extensions import db
from tests.conftest import build_app
from tests.factories import make_admin
from tests.support.web import AuthActions

from . import job_targets
from .conftest import AdminActions, audit_entries


def test_in_process_mode_says_so(app, client, admin):
    html = client.get("/admin/jobs").get_data(as_text=True)
    assert "Jobs run in-process" in html
    response = admin.post("/admin/jobs/anything/retry")
    assert response.status_code == 409
    assert audit_entries(app) == []


@pytest.mark.redis
def test_rq_failed_job_is_listed_and_retried(tmp_path, redis_url):
    from rq import SimpleWorker
    from rq.registry import FailedJobRegistry

    app = build_app(f"sqlite:///{tmp_path / 'rq.db'}", REDIS_URL=redis_url, JOBS_MODE="rq")
    try:
        with app.app_context():
            admin_id = make_admin("boss@example.com").id
            jobs.enqueue(job_targets.always_fails, 42, job_id="payout-42")
            connection = jobs.redis_connection()
            queue = jobs.queue()
            assert SimpleWorker([queue], connection=connection).work(burst=True)
            assert FailedJobRegistry(queue=queue).get_job_ids() == ["payout-42"]

        client = app.test_client()
        AuthActions(client).login(email="boss@example.com")
        html = client.get("/admin/jobs").get_data(as_text=True)
        assert "always_fails" in html and "payout-42" in html
        assert "payout provider unreachable for payout 42" in html
        assert "No worker is running" in html

        response = AdminActions(client).post("/admin/jobs/payout-42/retry", htmx=True)
        assert response.status_code == 204
        with app.app_context():
            assert FailedJobRegistry(queue=jobs.queue()).get_job_ids() == []
            assert jobs.queue().get_job_ids() == ["payout-42"]
        [entry] = audit_entries(app, "job.retry")
        assert (entry.actor_id, entry.target_type, entry.target_id) == (admin_id, "job", "payout-42")

        # Retried again while it is no longer failed: refused, nothing recorded.
        assert AdminActions(client).post("/admin/jobs/payout-42/retry").status_code == 404
        assert len(audit_entries(app, "job.retry")) == 1
        html = client.get("/admin/jobs").get_data(as_text=True)
        assert "No failed jobs" in html
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
