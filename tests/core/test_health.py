import pytest

from tests.conftest import build_app
from tests.factories import make_admin, make_user
from tests.support.web import AuthActions

TOKEN = "monitor-token-0123456789"
DETAILS = {"X-Healthz-Token": TOKEN}


@pytest.fixture
def monitored(app):
    app.config["HEALTHZ_TOKEN"] = TOKEN
    return app


def test_healthz_reports_ok_on_the_embedded_default(monitored, client):
    response = client.get("/healthz", headers=DETAILS)
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok" and body["code"] == 200
    assert body["checks"]["database"] == {"ok": True, "backend": "sqlite"}
    assert body["checks"]["redis"] == {"ok": True, "configured": False}
    assert body["checks"]["jobs"]["mode"] == "sync"


def broken_database(monkeypatch):
    from edutradex.core import health

    def broken():
        raise RuntimeError('connection to server at "db.internal" (10.0.0.5), port 5432 failed: password rejected')

    monkeypatch.setattr(health.db.session, "execute", lambda *a, **k: broken())


def test_healthz_is_503_when_the_database_is_down(monitored, client, monkeypatch):
    broken_database(monkeypatch)
    response = client.get("/healthz", headers=DETAILS)
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"]["ok"] is False
    assert "db.internal" in response.get_json()["checks"]["database"]["error"]


def test_the_public_answer_is_status_and_code_only(monitored, client, monkeypatch):
    assert client.get("/healthz").get_json() == {"status": "ok", "code": 200}
    broken_database(monkeypatch)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unhealthy", "code": 503}
    assert "db.internal" not in response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("headers", [{}, {"X-Healthz-Token": "wrong"}, {"X-Healthz-Token": ""}])
def test_no_details_without_the_right_token(monitored, client, headers):
    assert "checks" not in client.get("/healthz", headers=headers).get_json()


def test_no_token_configured_means_no_token_works(app, client):
    assert app.config["HEALTHZ_TOKEN"] is None
    assert "checks" not in client.get("/healthz", headers={"X-Healthz-Token": ""}).get_json()
    assert "checks" not in client.get("/healthz", headers={"X-Healthz-Token": "None"}).get_json()


def test_admins_see_the_details_traders_do_not(app, client):
    with app.app_context():
        make_user("trader@example.com")
        make_admin("boss@example.com")
    auth = AuthActions(client)
    auth.login(email="trader@example.com")
    assert "checks" not in client.get("/healthz").get_json()
    auth.logout()
    auth.login(email="boss@example.com")
    assert client.get("/healthz").get_json()["checks"]["database"]["ok"] is True


def test_feature_health_checks_count(monitored, client):
    monitored.extensions["health_checks"]["feed"] = lambda: (False, {"detail": "no tick for 30 s"})
    response = client.get("/healthz", headers=DETAILS)
    assert response.status_code == 503
    assert response.get_json()["checks"]["feed"] == {"ok": False, "detail": "no tick for 30 s"}


@pytest.mark.redis
def test_healthz_with_redis_and_rq(tmp_path, redis_url):
    app = build_app(f"sqlite:///{tmp_path / 'h.db'}", REDIS_URL=redis_url, JOBS_MODE="rq", HEALTHZ_TOKEN=TOKEN)
    response = app.test_client().get("/healthz", headers=DETAILS)
    body = response.get_json()
    assert body["checks"]["redis"] == {"ok": True, "configured": True}
    # No RQ worker is running: the queue cannot make progress, so unhealthy.
    assert body["checks"]["jobs"]["workers"] == 0
    assert response.status_code == 503


@pytest.mark.redis
def test_healthz_when_redis_is_unreachable(tmp_path):
    from tests.support.servers import free_port

    app = build_app(f"sqlite:///{tmp_path / 'h.db'}", REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", JOBS_MODE="thread",
                    HEALTHZ_TOKEN=TOKEN)
    response = app.test_client().get("/healthz", headers=DETAILS)
    assert response.status_code == 503
    assert response.get_json()["checks"]["redis"]["ok"] is False
    assert app.test_client().get("/healthz").get_json() == {"status": "unhealthy", "code": 503}


def test_a_signed_in_visitor_gets_the_public_answer_while_the_database_is_down(app, client, monkeypatch):
    with app.app_context():
        make_user("trader@example.com")
    AuthActions(client).login(email="trader@example.com")
    broken_database(monkeypatch)

    def load_user(user_id):
        raise RuntimeError("connection refused")  # the session's user cannot be loaded either

    monkeypatch.setattr(app.login_manager, "_user_callback", load_user)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unhealthy", "code": 503}
