"""What ``flask wallet verify`` checks about prize pools (registered in
app.extensions['ledger_checks']): each competition's pool holds exactly the fees its
participants have in it; a settled or cancelled competition's pool is empty."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from ..extensions import db
from ..wallet.models import PlatformAccount, PlatformAccountKind
from .models import Competition, CompetitionStatus, Participant, ParticipantStatus, pool_reference

ZERO = Decimal("0.00")
EMPTY_WHEN = (CompetitionStatus.SETTLED.value, CompetitionStatus.CANCELLED.value)


def check_prize_pools() -> list[str]:
    problems: list[str] = []
    pools = dict(db.session.execute(select(PlatformAccount.reference, PlatformAccount.balance)
                                    .where(PlatformAccount.kind == PlatformAccountKind.PRIZE_POOL.value)).all())
    fees = dict(db.session.execute(
        select(Participant.competition_id, func.sum(Participant.fees_paid))
        .where(Participant.status == ParticipantStatus.ACTIVE.value).group_by(Participant.competition_id)).all())
    for competition_id, status in db.session.execute(select(Competition.id, Competition.status)):
        reference = pool_reference(competition_id)
        held = pools.get(reference, ZERO)
        expected = ZERO if status in EMPTY_WHEN else (fees.get(competition_id) or ZERO)
        if held != expected:
            what = "should be empty" if status in EMPTY_WHEN else f"should hold the participants' fees {expected}"
            problems.append(f"prize pool of competition {competition_id} ({status}) holds {held} but {what}")
    # A pool with no competition row (the wallet's own tests post to such pools) is only
    # part of the platform-wide sum above.
    return problems
