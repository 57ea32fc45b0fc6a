"""The /alerts and /notifications pages through the real forms: setting, listing and
deleting alerts, and every bad input refused with a clear message and nothing written."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from edutradex.alerts.models import AlertFire, PriceAlert
from edutradex.extensions import db
from tests.alerts.conftest import EUR
from tests.factories import make_user
from tests.support.web import csrf_token


def alerts_count() -> int:
    count = db.session.scalar(select(func.count()).select_from(PriceAlert))
    db.session.rollback()
    return count


@pytest.fixture
def signed_in(app, client, auth, record):
    with app.app_context():
        user = make_user("alice@example.com")
        record(EUR, "1.08500")
        user_id = user.id
    auth.login("alice@example.com")
    return user_id


def post_alert(client, **fields):
    data = {"csrf_token": csrf_token(client, "/alerts"), "symbol": EUR, "kind": "ABOVE", "level": "1.09000",
            "expires": "", **fields}
    return client.post("/alerts", data=data)


def test_set_list_and_delete_an_alert(app, client, signed_in):
    response = post_alert(client, kind="CROSSING", level="1.08000", repeat="1", expires="1d")
    assert response.status_code == 302
    page = client.get("/alerts").get_data(as_text=True)
    assert "EUR/USD OTC crosses 1.08000, every time" in page
    with app.app_context():
        alert = db.session.scalar(select(PriceAlert))
        assert (alert.kind, alert.watching, alert.repeat, alert.status) == ("CROSSING", "<=", True, "ACTIVE")
        assert alert.expires_at is not None
        alert_id = alert.id
    response = client.post(f"/alerts/{alert_id}/delete", data={"csrf_token": csrf_token(client, "/alerts")})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(PriceAlert, alert_id).status == "DELETED"
    assert "No alerts yet." in client.get("/alerts").get_data(as_text=True)


@pytest.mark.parametrize(("fields", "status", "message"), [
    ({"symbol": "NOPE"}, 400, "Unknown market 'NOPE'."),
    ({"level": "abc"}, 400, "Price: enter a number"),
    ({"level": "-1.2"}, 400, "Price: must be more than 0."),
    ({"level": "0"}, 400, "Price: must be more than 0."),
    ({"level": "NaN"}, 400, "Price: enter a number"),
    ({"level": "1e9"}, 400, "Price: enter a number"),
    ({"level": "99999999999999999999"}, 400, "Price: must be at most 1000000000."),
    ({"level": "1.085001"}, 400, "Price: use at most 5 decimal places."),
    ({"kind": "SIDEWAYS"}, 400, "Choose above, below or crossing."),
    ({"expires": "forever"}, 400, "Choose when the alert expires from the list."),
    ({"kind": "ABOVE", "level": "1.08000"}, 409,
     "EUR/USD OTC is already above 1.08000 (now 1.08500): this alert would fire at once."),
    ({"kind": "BELOW", "level": "1.09000"}, 409,
     "EUR/USD OTC is already below 1.09000 (now 1.08500): this alert would fire at once."),
    ({"kind": "CROSSING", "level": "1.08500"}, 409, "EUR/USD OTC is already at 1.08500 (now 1.08500)"),
])
def test_bad_input_is_refused_with_its_reason_and_nothing_written(app, client, signed_in, fields, status, message):
    response = post_alert(client, **fields)
    assert response.status_code == status
    assert message in response.get_data(as_text=True).replace("&#39;", "'")
    with app.app_context():
        assert alerts_count() == 0


def test_the_trade_page_form_answers_htmx_with_the_message_in_place(app, client, signed_in):
    page = client.get(f"/trade/{EUR}").get_data(as_text=True)
    assert 'data-testid="trade-alert"' in page
    headers = {"HX-Request": "true", "X-CSRFToken": csrf_token(client, f"/trade/{EUR}")}
    refused = client.post("/alerts", data={"symbol": EUR, "kind": "ABOVE", "level": "1.08000"}, headers=headers)
    assert refused.status_code == 409 and refused.headers["HX-Retarget"] == "#alert-form-refusal"
    assert "already above 1.08000 (now 1.08500)" in refused.get_data(as_text=True)
    made = client.post("/alerts", data={"symbol": EUR, "kind": "ABOVE", "level": "1.09000"}, headers=headers)
    assert made.status_code == 200 and 'data-testid="alert-created"' in made.get_data(as_text=True)
    with app.app_context():
        assert alerts_count() == 1


def test_over_the_limit_is_refused(app, client, signed_in):
    app.config["ALERTS_PER_USER"] = 2
    assert post_alert(client, level="1.09000").status_code == 302
    assert post_alert(client, level="1.09100").status_code == 302
    response = post_alert(client, level="1.09200")
    assert response.status_code == 409
    assert "You have 2 active alerts, the most allowed (2). Delete one first." in response.get_data(as_text=True)
    with app.app_context():
        assert alerts_count() == 2


def test_someone_elses_alert_or_notification_is_a_404(app, client, signed_in):
    with app.app_context():
        from edutradex.alerts import service

        bob = make_user("bob@example.com")
        bobs = service.create_alert(bob.id, EUR, "ABOVE", "1.09000").id
        fire = AlertFire(alert_id=bobs, user_id=bob.id, symbol=EUR, tick_id=1, tick_ts_ms=1, price=1, message="m")
        db.session.add(fire)
        db.session.commit()
        fire_id = fire.id
    token = csrf_token(client, "/alerts")
    assert client.post(f"/alerts/{bobs}/delete", data={"csrf_token": token}).status_code == 404
    assert client.post(f"/notifications/{fire_id}/read", data={"csrf_token": token}).status_code == 404
    assert client.post("/alerts/999999/delete", data={"csrf_token": token}).status_code == 404
    with app.app_context():
        assert db.session.get(PriceAlert, bobs).status == "ACTIVE"
        assert db.session.get(AlertFire, fire_id).read_at is None


def test_a_post_without_the_csrf_token_is_refused(app, client, signed_in):
    response = client.post("/alerts", data={"symbol": EUR, "kind": "ABOVE", "level": "1.09000"})
    assert response.status_code == 400 and "security token" in response.get_data(as_text=True)
    assert post_alert(client).status_code == 302
    with app.app_context():
        alert_id = db.session.scalar(select(PriceAlert.id))
    assert client.post(f"/alerts/{alert_id}/delete").status_code == 400
    with app.app_context():
        assert alerts_count() == 1 and db.session.get(PriceAlert, alert_id).status == "ACTIVE"


def test_notifications_show_the_unread_count_in_the_bell_and_mark_read(app, client, signed_in):
    with app.app_context():
        from edutradex.alerts import service

        alert_id = service.create_alert(signed_in, EUR, "ABOVE", "1.09000").id
        for tick in (1, 2):
            db.session.add(AlertFire(alert_id=alert_id, user_id=signed_in, symbol=EUR, tick_id=tick, tick_ts_ms=tick,
                                     price=1, message=f"EUR/USD OTC rose to 1.0900{tick}"))
        db.session.commit()
        first = db.session.scalar(select(AlertFire.id).order_by(AlertFire.id))
    page = client.get("/notifications").get_data(as_text=True)
    assert 'data-testid="unread-count">2<' in page and "EUR/USD OTC rose to 1.09002" in page
    client.post(f"/notifications/{first}/read", data={"csrf_token": csrf_token(client, "/notifications")})
    assert 'data-testid="unread-count">1<' in client.get("/alerts").get_data(as_text=True)
    client.post("/notifications/read", data={"csrf_token": csrf_token(client, "/notifications")})
    assert 'data-testid="unread-count">0<' in client.get("/notifications").get_data(as_text=True)


def test_a_page_carries_the_recent_unread_fires_for_the_toasts_its_connection_missed(app, client, signed_in):
    """A fire while the page was loading (the form's redirect, a navigation) reached no live
    connection: the next page carries the unread fires of the last minute, and alerts.js
    toasts each once per tab. Older or read fires are not carried."""
    import json
    import re
    from datetime import timedelta

    from edutradex.types import utcnow

    def carried() -> list[dict]:
        page = client.get("/alerts").get_data(as_text=True)
        return json.loads(re.search(r"id=\"recent-alert-fires\" data-fires='([^']*)'", page).group(1))

    assert carried() == []
    with app.app_context():
        from edutradex.alerts import service

        alert_id = service.create_alert(signed_in, EUR, "ABOVE", "1.09000").id
        old = AlertFire(alert_id=alert_id, user_id=signed_in, symbol=EUR, tick_id=1, tick_ts_ms=1, price=1,
                        message="EUR/USD OTC rose to 1.09001", created_at=utcnow() - timedelta(minutes=5))
        new = AlertFire(alert_id=alert_id, user_id=signed_in, symbol=EUR, tick_id=2, tick_ts_ms=2, price=1,
                        message="EUR/USD OTC rose to <b>1.09002</b> 'quoted'")
        db.session.add_all([old, new])
        db.session.commit()
        new_id = new.id
    assert carried() == [{"fire_id": new_id, "message": "EUR/USD OTC rose to <b>1.09002</b> 'quoted'"}]
    client.post("/notifications/read", data={"csrf_token": csrf_token(client, "/notifications")})
    assert carried() == []
