"""What the competition pages show, read from the database: the lobby's tabs, the pool so
far, the prize table in credits from the current pool, participants and results. Reading
only; every change goes through ``service``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from sqlalchemy import func, select

from ..auth.models import User
from ..extensions import db
from ..types import utcnow
from ..wallet.models import PlatformAccount, PlatformAccountKind
from .models import Competition, CompetitionStatus, Participant, ParticipantStatus, pool_reference
from .prizes import CENT, ZERO, rank_prizes

S = CompetitionStatus
PAGE_SIZE = 12
PARTICIPANTS_SHOWN = 200

TABS = {
    "upcoming": ((S.SCHEDULED.value,), Competition.start_at.asc()),
    "live": ((S.LIVE.value,), Competition.end_at.asc()),
    "finished": ((S.ENDED.value, S.SETTLED.value, S.CANCELLED.value), Competition.end_at.desc()),
}
TAB_LABELS = {"upcoming": "Upcoming", "live": "Live", "finished": "Finished"}


def tab_name(raw: str | None) -> str:
    """Navigation is forgiving: an unknown tab is Upcoming."""
    return raw if raw in TABS else "upcoming"


def lobby(tab: str, page: int):
    statuses, order = TABS[tab]
    query = select(Competition).where(Competition.status.in_(statuses)).order_by(order, Competition.id)
    return db.paginate(query, page=page, per_page=PAGE_SIZE, error_out=False)


def pools(competition_ids: list[int]) -> dict[int, Decimal]:
    """Each competition's pool so far, in one query."""
    if not competition_ids:
        return {}
    references = {pool_reference(cid): cid for cid in competition_ids}
    rows = db.session.execute(select(PlatformAccount.reference, PlatformAccount.balance).where(
        PlatformAccount.kind == PlatformAccountKind.PRIZE_POOL.value, PlatformAccount.reference.in_(references)))
    found = {references[reference]: balance for reference, balance in rows}
    return {cid: found.get(cid, ZERO) for cid in competition_ids}


@dataclass(frozen=True)
class PrizeRow:
    rank: int
    percent: Decimal
    credits: Decimal


@dataclass(frozen=True)
class PrizePreview:
    pool: Decimal
    fee: Decimal
    net_pool: Decimal  # what the percentages apply to (raised to the guarantee)
    guaranteed: bool  # the guarantee is what pays today
    rows: list[PrizeRow]


def prize_preview(competition: Competition, pool: Decimal) -> PrizePreview:
    """The prize table in credits if the competition ended with the pool it has now: the
    same arithmetic as the settlement (prizes.split_pool), before ties."""
    if competition.net_pool is not None:  # settled: the real figures
        pool, fee, net = competition.pool_at_settlement, competition.platform_fee_amount, competition.net_pool
    else:
        fee = (pool * Decimal(competition.platform_fee_percent) / 100).quantize(CENT, rounding=ROUND_HALF_EVEN)
        net = max(pool - fee, competition.guaranteed_pool)
    percents = [Decimal(p) for p in competition.prize_table]
    rows = [PrizeRow(rank, percent, credits)
            for rank, (percent, credits) in enumerate(zip(percents, rank_prizes(net, percents), strict=True), start=1)]
    return PrizePreview(pool=pool, fee=fee, net_pool=net,
                        guaranteed=competition.guaranteed_pool > 0 and net == competition.guaranteed_pool > pool - fee,
                        rows=rows)


def seconds_until(moment: datetime, now: datetime | None = None) -> int:
    return max(0, int((moment - (now or utcnow())).total_seconds()))


def countdown(competition: Competition, now: datetime | None = None) -> tuple[str, datetime] | None:
    """What the clock counts down to, by the server's time: the start, or the end."""
    if competition.status == S.SCHEDULED.value:
        return "Starts in", competition.start_at
    if competition.status == S.LIVE.value:
        return "Ends in", competition.end_at
    return None


def participants(competition_id: int) -> list[tuple[Participant, str]]:
    """Active participants with their names: by final rank once ranked, else by joining."""
    query = (select(Participant, User.name).join(User, User.id == Participant.user_id)
             .where(Participant.competition_id == competition_id, Participant.status == ParticipantStatus.ACTIVE.value)
             .order_by(Participant.final_rank.is_(None), Participant.final_rank, Participant.final_equity.desc(),
                       Participant.joined_at, Participant.id)
             .limit(PARTICIPANTS_SHOWN))
    return [(participant, name) for participant, name in db.session.execute(query)]


def joined_among(user_id: int, competition_ids: list[int]) -> set[int]:
    """Which of these competitions the trader is in (for the lobby's Joined badge)."""
    if not competition_ids:
        return set()
    return set(db.session.scalars(select(Participant.competition_id).where(
        Participant.user_id == user_id, Participant.competition_id.in_(competition_ids),
        Participant.status == ParticipantStatus.ACTIVE.value)))


def my_entries(user_id: int, page: int):
    query = (select(Participant).join(Competition, Competition.id == Participant.competition_id)
             .where(Participant.user_id == user_id, Participant.status == ParticipantStatus.ACTIVE.value)
             .order_by(Competition.start_at.desc(), Participant.id))
    return db.paginate(query, page=page, per_page=PAGE_SIZE, error_out=False)


def count_active(competition_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(Participant).where(
        Participant.competition_id == competition_id, Participant.status == ParticipantStatus.ACTIVE.value)) or 0
