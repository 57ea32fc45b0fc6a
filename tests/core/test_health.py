import pytest

from tests.conftest import build_app


def test_healthz_reports_ok_on_the_embedded_default(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == {"ok": True, "backend": "sqlite"}
    assert body["checks"]["redis"] == {"ok": True, "configured": False}
    assert body["checks"]["jobs"]["mode"] == "sync"


def test_healthz_is_503_when_the_database_is_down(app, client, monkeypatch):
    from edutradex.core import health

    def broken():
        raise RuntimeError("connection refused")

    monkeypatch.setattr(health.db.session, "execute", lambda *a, **k: broken())
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"]["ok"] is False


def test_feature_health_checks_count(app, client):
    app.extensions["health_checks"]["feed"] = lambda: (False, {"detail": "no tick for 30 s"})
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["feed"] == {"ok": False, "detail": "no tick for 30 s"}


@pytest.mark.redis
def test_healthz_with_redis_and_rq(tmp_path, redis_url):
    app = build_app(f"sqlite:///{tmp_path / 'h.db'}", REDIS_URL=redis_url, JOBS_MODE="rq")
    response = app.test_client().get("/healthz")
    body = response.get_json()
    assert body["checks"]["redis"] == {"ok": True, "configured": True}
    # No RQ worker is running: the queue cannot make progress, so unhealthy.
    assert body["checks"]["jobs"]["workers"] == 0
    assert response.status_code == 503


@pytest.mark.redis
def test_healthz_when_redis_is_unreachable(tmp_path):
    from tests.support.servers import free_port

    app = build_app(f"sqlite:///{tmp_path / 'h.db'}", REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", JOBS_MODE="thread")
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["redis"]["ok"] is False
