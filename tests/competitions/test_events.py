"""Socket.IO: the public room of a competition and the trader's own room, after commit."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from edutradex.auth.models import User
from edutradex.competitions import lifecycle, service
from edutradex.extensions import db, socketio
from tests.competitions.conftest import fund, open_competition, participants, trader


def events(client, name: str) -> list[dict]:
    return [m["args"][0] for m in client.get_received() if m["name"] == name]


def test_watchers_see_seats_start_end_and_the_top_10_and_each_trader_their_result(app, client, auth):
    auth.register()
    with app.app_context():
        joe = db.session.scalar(select(User.id).where(User.email == "joe@example.com"))
        fund(joe, "100.00")
        competition = open_competition(entry_fee="10.00", min_participants=1)
        draft = service.create_competition({**{k: getattr(competition, k) for k in (
            "registration_opens_at", "registration_closes_at", "start_at", "end_at")}, "name": "Hidden draft"})
        cid, draft_id = competition.id, draft.id
    viewer = socketio.test_client(app)  # anonymous: the public room only
    assert viewer.emit("competition_watch", {"id": draft_id}, callback=True) == {"error": "This competition does not exist."}
    assert viewer.emit("competition_watch", {"id": "x"}, callback=True) == {"error": "Give a competition id."}
    assert viewer.emit("competition_watch", {"id": cid}, callback=True) == {"id": cid, "status": "SCHEDULED",
                                                                            "seats_taken": 0}
    trader_socket = socketio.test_client(app, flask_test_client=client)

    with app.app_context():
        other = trader()
        service.join_competition(cid, joe)
        service.join_competition(cid, other)
        service.leave_competition(cid, other)
        assert [e["seats_taken"] for e in events(viewer, "competition_participants")] == [1, 2, 1]
        for participant in participants(cid):
            participant.trades_count, participant.equity = 1, Decimal("10500.00")
        db.session.commit()
        start, end = competition.start_at, competition.end_at
        lifecycle.run_overdue(start)
        lifecycle.run_overdue(end + timedelta(seconds=1))

    received = viewer.get_received()
    assert [m["args"][0]["status"] for m in received if m["name"] == "competition_status"] == ["LIVE", "ENDED"]
    [settled] = [m["args"][0] for m in received if m["name"] == "competition_settled"]
    assert settled == {"id": cid, "top": [{"rank": 1, "name": "Trader Joe", "equity": "10500.00", "prize": "5.60"}]}
    assert not [m for m in received if m["name"] == "competition_result"]  # personal results go to the trader only
    assert events(trader_socket, "competition_result") == [
        {"id": cid, "rank": 1, "equity": "10500.00", "prize": "5.60", "disqualified": False}]
