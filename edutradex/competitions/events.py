"""Socket.IO for competitions, always emitted after the commit.

- Room ``competition:<id>`` (public; a page joins it with ``competition_watch``):
  ``competition_participants`` (seats taken), ``competition_status`` (started, cancelled,
  ended), ``competition_settled`` (the top 10).
- Room ``user:<id>``: ``competition_result`` (rank, final equity, prize) for each participant.
"""

from __future__ import annotations

import logging

from flask_socketio import join_room
from sqlalchemy import select

from ..core.events import user_room
from ..extensions import db, socketio

log = logging.getLogger(__name__)
INLINE_MAX = 200


def competition_room(competition_id: int) -> str:
    return f"competition:{competition_id}"


@socketio.on("competition_watch")
def on_watch(data=None):
    """Join a published competition's public room. Answers with the current seat count."""
    from .models import Competition, CompetitionStatus

    try:
        competition_id = int((data or {}).get("id"))
    except (TypeError, ValueError, AttributeError):
        return {"error": "Give a competition id."}
    competition = db.session.get(Competition, competition_id)
    try:
        if competition is None or competition.status == CompetitionStatus.DRAFT.value:
            return {"error": "This competition does not exist."}
        join_room(competition_room(competition_id))
        return {"id": competition_id, "status": competition.status, "seats_taken": competition.seats_taken}
    finally:
        db.session.remove()


def _emit(event: str, payload: dict, room: str) -> None:
    try:
        socketio.emit(event, payload, to=room)
    except Exception:
        log.exception("could not emit %s to %s", event, room)


def announce_participants(competition_id: int, seats_taken: int) -> None:
    _emit("competition_participants", {"id": competition_id, "seats_taken": seats_taken},
          competition_room(competition_id))


def announce_status(competition_id: int, status: str, reason: str | None = None) -> None:
    payload = {"id": competition_id, "status": status}
    if reason:
        payload["reason"] = reason
    _emit("competition_status", payload, competition_room(competition_id))


def announce_settled(competition_id: int) -> None:
    """The top 10 to the public room, and each participant's own result to their room."""
    from ..auth.models import User
    from .models import Participant, ParticipantStatus

    rows = db.session.execute(
        select(Participant.user_id, User.name, Participant.final_rank, Participant.final_equity, Participant.prize,
               Participant.disqualified)
        .join(User, User.id == Participant.user_id)
        .where(Participant.competition_id == competition_id, Participant.status == ParticipantStatus.ACTIVE.value)
        .order_by(Participant.final_rank.is_(None), Participant.final_rank, Participant.id)).all()
    db.session.rollback()
    top = [{"rank": r.final_rank, "name": r.name, "equity": str(r.final_equity), "prize": str(r.prize)}
           for r in rows if r.final_rank is not None][:10]
    results = [(r.user_id, {"id": competition_id, "rank": r.final_rank, "equity": str(r.final_equity),
                            "prize": str(r.prize), "disqualified": r.disqualified}) for r in rows]

    def send() -> None:
        _emit("competition_settled", {"id": competition_id, "top": top}, competition_room(competition_id))
        for user_id, result in results:
            _emit("competition_result", result, user_room(user_id))

    if len(results) > INLINE_MAX:
        socketio.start_background_task(send)  # let the clock move on while 10,000 results go out
    else:
        send()
