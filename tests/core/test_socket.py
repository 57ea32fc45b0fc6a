"""Socket.IO connections are authenticated from the Flask-Login session; the server picks
the rooms."""

from edutradex.core.events import user_room
from edutradex.extensions import socketio
from tests.factories import make_user


def rooms_of(app, sio_client):
    manager = socketio.server.manager
    return set(manager.get_rooms(manager.sid_from_eio_sid(sio_client.eio_sid, "/"), "/"))


def test_signed_in_user_joins_their_own_room(app, client, auth):
    with app.app_context():
        user_id = make_user("joe@example.com").id
    auth.login()
    sio = socketio.test_client(app, flask_test_client=client)
    assert sio.is_connected()
    assert user_room(user_id) in rooms_of(app, sio)
    socketio.emit("notice", {"message": "hello"}, to=user_room(user_id))
    received = sio.get_received()
    assert [m["args"][0]["message"] for m in received if m["name"] == "notice"] == ["hello"]


def test_anonymous_connection_gets_no_user_room(app, client):
    sio = socketio.test_client(app, flask_test_client=client)
    assert sio.is_connected()
    assert not any(room.startswith("user:") for room in rooms_of(app, sio))


def test_client_cannot_choose_its_user_room(app, client, auth):
    with app.app_context():
        victim = make_user("victim@example.com").id
        make_user("joe@example.com")
    auth.login()
    sio = socketio.test_client(app, flask_test_client=client, auth={"room": user_room(victim), "user_id": victim})
    assert user_room(victim) not in rooms_of(app, sio)
