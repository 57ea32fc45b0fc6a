"""What the competition pages show, read from the database: the lobby's tabs, the pool so
far, the prize table in credits from the current pool, participants and results. Reading
only; every change goes through ``service``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from sqlalchemy import String, cast, exists, false, func, literal, or_, select

from ..auth.models import User
from ..errors import DomainError
from ..extensions import db
from ..market.models import Market, MarketType
from ..parsing import parse_decimal
from ..types import utcnow
from ..wallet.models import PlatformAccount, PlatformAccountKind
from .models import Competition, CompetitionKind, CompetitionStatus, Participant, ParticipantStatus, pool_reference
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


FEE_CHOICES = {"": "Any fee", "free": "Free", "paid": "Paid"}
KIND_LABELS = {CompetitionKind.CFD.value: "CFD", CompetitionKind.RISE_FALL.value: "Rise/Fall"}
MARKET_LABELS = {MarketType.FOREX.value: "Forex", MarketType.OTC.value: "OTC", MarketType.SYNTHETIC.value: "Synthetic"}
MAX_FEE_LIMIT = Decimal("1000000.00")


@dataclass(frozen=True)
class LobbyFilters:
    """The lobby's filters, from the query string. ``raw`` is what was typed (shown back in
    the form and kept in the tab and page links); ``errors`` maps a field to its message."""
    fee: str = ""  # "", "free" or "paid"
    max_fee: Decimal | None = None
    kind: str = ""
    market: str = ""
    seats: bool = False
    raw: dict | None = None
    errors: dict | None = None

    @property
    def args(self) -> dict[str, str]:
        """The non-empty filters, for links that must keep them."""
        return {key: value for key, value in (self.raw or {}).items() if value}

    @property
    def active(self) -> bool:
        return bool(self.args)


def parse_filters(args) -> LobbyFilters:
    """Filters typed by a person: every bad value is reported next to its field (the view
    answers 400 with an empty result), never guessed."""
    raw = {key: (args.get(key) or "").strip()[:64] for key in ("fee", "max_fee", "kind", "market", "seats")}
    errors: dict[str, str] = {}
    if raw["fee"] not in FEE_CHOICES:
        errors["fee"] = "Entry fee: choose any, free or paid."
    max_fee = None
    if raw["max_fee"]:
        try:
            max_fee = parse_decimal(raw["max_fee"], "Max fee", places=2, minimum=Decimal("0"),
                                    maximum=MAX_FEE_LIMIT, example="25.00")
        except DomainError as error:
            errors["max_fee"] = str(error)
    if raw["kind"] and raw["kind"] not in KIND_LABELS:
        errors["kind"] = f"Kind: choose {' or '.join(KIND_LABELS.values())}."
    if raw["market"] and raw["market"] not in MARKET_LABELS:
        errors["market"] = f"Market: choose {', '.join(MARKET_LABELS.values())}."
    if raw["seats"] not in ("", "1"):
        errors["seats"] = "Seats left: tick the box or leave it empty."
    return LobbyFilters(fee=raw["fee"] if "fee" not in errors else "", max_fee=max_fee, kind=raw["kind"],
                        market=raw["market"], seats=raw["seats"] == "1", raw=raw, errors=errors)


def _allows_market_type(market_type: str):
    """Competitions whose allowed markets include this market type: every market (empty
    list), the type itself, or one of its symbols. The list is JSON; matched as text."""
    listed = cast(Competition.allowed_markets, String)
    symbol_of_type = exists(select(Market.id).where(
        Market.market_type == market_type, listed.like(literal('%"') + Market.symbol + literal('"%'))))
    return or_(listed == "[]", listed.like(f'%"{market_type}"%'), symbol_of_type)


def lobby(tab: str, page: int, filters: LobbyFilters | None = None):
    statuses, order = TABS[tab]
    query = select(Competition).where(Competition.status.in_(statuses)).order_by(order, Competition.id)
    if filters is not None:
        query = query.where(*_filter_clauses(filters))
    return db.paginate(query, page=page, per_page=PAGE_SIZE, error_out=False)


def _filter_clauses(filters: LobbyFilters) -> list:
    if filters.errors:  # a bad filter shows nothing rather than a guess
        return [false()]
    clauses = []
    if filters.fee == "free":
        clauses.append(Competition.entry_fee == ZERO)
    elif filters.fee == "paid":
        clauses.append(Competition.entry_fee > ZERO)
    if filters.max_fee is not None:
        clauses.append(Competition.entry_fee <= filters.max_fee)
    if filters.kind:
        clauses.append(Competition.kind == filters.kind)
    if filters.market:
        clauses.append(_allows_market_type(filters.market))
    if filters.seats:
        clauses.append(Competition.seats_taken < Competition.max_participants)
    return clauses


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
