"""Job functions for tests/test_jobs.py: module-level, receive ids, as real jobs do."""

from edutradex.auth.models import User
from edutradex.extensions import db
from edutradex.jobs import job


@job
def rename_user(user_id: int, name: str) -> None:
    user = db.session.get(User, user_id)
    user.name = name
    db.session.commit()
