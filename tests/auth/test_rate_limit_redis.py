"""With REDIS_URL set, rate limits are stored in Redis, so every web process counts the
same attempts."""

import pytest

from tests.conftest import build_app
from tests.support.web import AuthActions

pytestmark = pytest.mark.redis


def test_login_limit_is_shared_between_processes_through_redis(tmp_path, redis_url):
    def web_process(name):
        app = build_app(f"sqlite:///{tmp_path / name}.db", REDIS_URL=redis_url, RATELIMIT_ENABLED=True,
                        RATELIMIT_STORAGE_URI=redis_url, RATELIMIT_AUTH="3 per minute", JOBS_MODE="sync")
        return AuthActions(app.test_client())

    first, second = web_process("a"), web_process("b")
    statuses = [first.login(password="wrong-password").status_code,
                second.login(password="wrong-password").status_code,
                first.login(password="wrong-password").status_code,
                second.login(password="wrong-password").status_code]
    assert statuses == [401, 401, 401, 429]
