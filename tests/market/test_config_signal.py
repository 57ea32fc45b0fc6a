"""The shared config version is read once per web request, and never remembered outside one
(the feed loop's long-lived app context must see every announcement)."""

from __future__ import annotations

import pytest
from redis import Redis

from edutradex.extensions import db
from edutradex.market import config_signal
from tests.conftest import build_app

pytestmark = pytest.mark.redis


@pytest.fixture
def redis_app(tmp_path, redis_url):
    app = build_app(f"sqlite:///{tmp_path / 'signal.db'}", REDIS_URL=redis_url)
    yield app, Redis.from_url(redis_url)
    with app.app_context():
        db.engine.dispose()


def test_one_request_reads_the_shared_version_once_the_next_request_reads_it_again(redis_app):
    app, redis = redis_app
    with app.test_request_context():
        first = config_signal.version()
        redis.incr(config_signal.REDIS_KEY)  # announced by another process during this request
        assert config_signal.version() == first
    with app.test_request_context():
        assert config_signal.version()[1] == first[1] + 1


def test_outside_a_request_every_call_reads_redis(redis_app):
    app, redis = redis_app
    with app.app_context():  # as the feed loop runs
        first = config_signal.version()
        redis.incr(config_signal.REDIS_KEY)
        assert config_signal.version()[1] == first[1] + 1


def test_an_edit_committed_in_this_process_moves_the_version_within_the_request(redis_app):
    app, _redis = redis_app
    with app.test_request_context():
        first = config_signal.version()
        config_signal.mark_changed(db.session)
        db.session.commit()
        assert config_signal.version()[0] != first[0]
