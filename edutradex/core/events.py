"""The Socket.IO connection. Rooms come from the server-side session, never from the client."""

from flask_login import current_user
from flask_socketio import join_room

from ..extensions import socketio
from ..metrics import SOCKETIO_CLIENTS


def user_room(user_id: int) -> str:
    return f"user:{user_id}"


@socketio.on("connect")
def on_connect(auth=None):
    if current_user.is_authenticated:
        join_room(user_room(current_user.id))
    # Anonymous visitors stay connected for public rooms (ticks) only.
    SOCKETIO_CLIENTS.inc()
    return True


@socketio.on("disconnect")
def on_disconnect(reason=None):
    SOCKETIO_CLIENTS.dec()
