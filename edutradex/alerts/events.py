"""A connection's catch-up on alerts. A page and its live connection are not made at the
same moment: a fire committed after the page was rendered but before the connection joined
the user's room (core/events.py, on connect) would reach neither, so the toast, the bell's
count and the live notifications list would miss it. Once connected, each page asks
(`alerts_catch_up`, answered in the acknowledgement): the unread count and the unread fires
of the last minute, read after the join, so any later fire arrives live. alerts.js shows
each fire once per tab, whichever way it came."""

from __future__ import annotations

from flask_login import current_user

from ..extensions import socketio
from .service import recent_unread, unread_count


@socketio.on("alerts_catch_up")
def on_alerts_catch_up(data=None) -> dict:
    if not current_user.is_authenticated:
        return {"unread": 0, "fires": []}
    return {"unread": unread_count(current_user.id), "fires": recent_unread(current_user.id)}
