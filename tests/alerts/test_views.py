"""The /alerts and /notifications pages through the real forms: setting, listing and
deleting alerts, and every bad input refused with a clear message and nothing written."""

from __future__ import annotations

import re

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


def test_a_connection_catches_up_on_the_fires_that_came_before_it_joined(app, client, signed_in, auth):
    """A fire between a page's render and its connection joining the user's room reached
    neither: once connected, the page asks (alerts_catch_up) and gets the unread count and
    the unread fires of the last minute, as the live frame carries them. Older or read
    fires are not in it; an anonymous connection gets nothing."""
    from datetime import timedelta

    from edutradex.extensions import socketio
    from edutradex.types import utcnow

    def catch_up() -> dict:
        sio = socketio.test_client(app, flask_test_client=client)
        try:
            return sio.emit("alerts_catch_up", {}, callback=True)
        finally:
            sio.disconnect()

    assert catch_up() == {"unread": 0, "fires": []}
    with app.app_context():
        from edutradex.alerts import service

        alert_id = service.create_alert(signed_in, EUR, "ABOVE", "1.09000").id
        old = AlertFire(alert_id=alert_id, user_id=signed_in, symbol=EUR, tick_id=1, tick_ts_ms=1, price=1,
                        message="EUR/USD OTC rose to 1.09001", created_at=utcnow() - timedelta(minutes=5))
        new = AlertFire(alert_id=alert_id, user_id=signed_in, symbol=EUR, tick_id=2, tick_ts_ms=2, price=1,
                        message="EUR/USD OTC rose to <b>1.09002</b> 'quoted'")
        db.session.add_all([old, new])
        db.session.commit()
        new_id, at = new.id, new.created_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    assert catch_up() == {"unread": 2, "fires": [
        {"fire_id": new_id, "message": "EUR/USD OTC rose to <b>1.09002</b> 'quoted'", "tick_id": 2, "at": at}]}
    client.post("/notifications/read", data={"csrf_token": csrf_token(client, "/notifications")})
    assert catch_up() == {"unread": 0, "fires": []}
    auth.logout()
    assert catch_up() == {"unread": 0, "fires": []}
    assert "recent-alert-fires" not in client.get("/").get_data(as_text=True)  # nothing carried by the page now


def test_notifications_are_paginated_newest_first_and_a_read_keeps_the_page(app, client, signed_in):
    with app.app_context():
        from edutradex.alerts import service

        alert_id = service.create_alert(signed_in, EUR, "ABOVE", "1.09000").id
        db.session.add_all([AlertFire(alert_id=alert_id, user_id=signed_in, symbol=EUR, tick_id=n, tick_ts_ms=n,
                                      price=1, message=f"fire number {n:03d}") for n in range(1, 121)])
        db.session.commit()
        oldest = db.session.scalar(select(AlertFire.id).order_by(AlertFire.id))

    def shown(url: str) -> tuple[list[str], str]:
        page = client.get(url).get_data(as_text=True)
        return re.findall(r"<b>fire number (\d{3})</b>", page), page

    first, page = shown("/notifications")
    assert first == [f"{n:03d}" for n in range(120, 70, -1)]  # the newest 50
    assert "Page 1 of 3 · 120 in all" in page and 'href="/notifications?page=2" rel="next"' in page
    assert 'data-live="1"' in page  # page 1 takes new fires live
    last, page = shown("/notifications?page=3")
    assert last == [f"{n:03d}" for n in range(20, 0, -1)] and 'data-live="1"' not in page
    assert 'href="/notifications?page=2" rel="prev"' in page
    assert shown("/notifications?page=abc")[0] == first  # a page that is not a number: the first
    beyond, page = shown("/notifications?page=99")
    assert beyond == [] and "No notifications on this page." in page

    token = csrf_token(client, "/notifications?page=3")
    response = client.post(f"/notifications/{oldest}/read?page=3", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].endswith("/notifications?page=3")
    assert "119 unread" in client.get("/notifications?page=3").get_data(as_text=True)


def test_no_notifications_yet_says_how_to_get_one(app, client, signed_in):
    page = client.get("/notifications").get_data(as_text=True)
    assert "Nothing yet." in page and "0 unread" in page
    assert 'id="mark-all-read" hidden' in page  # nothing to mark; alerts.js shows it when a fire comes
