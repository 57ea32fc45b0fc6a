from flask import render_template, url_for

from .. import bp
from ..services import jobs as service
from ._common import actor, done


@bp.get("/jobs")
def jobs():
    return render_template("admin/jobs.html", overview=service.queue_overview())


@bp.post("/jobs/<job_id>/retry")
def retry_job(job_id: str):
    service.retry_failed_job(actor(), job_id[:128])
    return done("The job is back on the queue.", url_for("admin.jobs"))
