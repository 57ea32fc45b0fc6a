"""RISE_FALL competitions: an IQ-Option-style tournament. Participants trade rise/fall
with their competition account instead of the demo balance, through the rise/fall engine
(binary/service.place_trade, binary/settlement.py): the same quote, stake, payout,
idempotency and settlement rules; only the account differs (``Trade.participant_id``).

The rules (shown on the competition's trade page):
- the account is the participant's competition account (``cash``, points in USD, never
  credits): nothing moves in the wallet ledger;
- only while the competition is LIVE, only for an active, not disqualified participant,
  only on the competition's allowed markets, and only trades that EXPIRE by the end
  (``expires_at <= end_at``): every trade settles within the contest;
- the stake leaves the account when the trade is placed; the payout (stake included on a
  win, the stake on a tie, nothing on a loss) comes back at settlement. Equity = cash:
  an open trade counts for nothing until it settles, because its value is not known
  before its expiry tick (counting it at its stake would rank a losing trade as even).
  At the end every trade is settled at its own recorded expiry tick before the standings
  (settle_trades_at_end), so final equity = cash;
- a rebuy is refused while a trade is open: it resets the account to the starting
  capital, and a payout arriving after it would land on top of the fresh capital.

Lock order: the competition row (FOR SHARE: the end step's status UPDATE waits for a
placement in flight, and a placement waits for the end), then the participant row (the
conditional debit), then the trade rows; the settlement locks participants before trades
too, and the end step and a rebuy lock the competition before the participant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select, update

from ..binary.models import Trade, TradeStatus
from ..binary.service import TradeError, ms_to_datetime, place_trade
from ..binary.settlement import settle_in_transaction
from ..errors import Conflict, Forbidden, NotFound
from ..extensions import db
from ..market.models import Market
from ..types import utcnow
from . import gate
from .models import Competition, CompetitionKind, CompetitionStatus, Participant, ParticipantStatus

S = CompetitionStatus


class SettlementPending(Exception):
    """A trade of the competition cannot be settled yet: the tick store has not stored
    its expiry (the watermark is behind). The end step rolls back and is retried."""


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def allows_market(competition: Competition, market: Market) -> bool:
    """Allowed markets are symbols or market types; none listed means every market."""
    allowed = competition.allowed_markets or []
    return not allowed or market.symbol in allowed or market.market_type in allowed


def check_open_for_trading(competition: Competition, now: datetime | None = None) -> None:
    """A RISE_FALL competition that is LIVE and not yet at its end."""
    now = now or utcnow()
    if competition.kind != CompetitionKind.RISE_FALL.value:
        raise NotFound("This competition is not a rise/fall competition.")
    if competition.status == S.SCHEDULED.value or competition.status == S.DRAFT.value:
        raise Conflict(f"The competition has not started yet: trading opens at "
                       f"{competition.start_at:%Y-%m-%d %H:%M} UTC.")
    if competition.status == S.CANCELLED.value:
        raise Conflict("This competition was cancelled: there is no more trading.")
    if competition.status != S.LIVE.value or now >= competition.end_at:
        raise Conflict("This competition has ended: there is no more trading.")


def check_participant(participant: Participant | None) -> Participant:
    if participant is None or participant.status != ParticipantStatus.ACTIVE.value:
        raise Forbidden("You are not in this competition.")
    if participant.disqualified:
        raise Forbidden("You were disqualified from this competition: you can no longer trade in it.")
    return participant


def _participant(competition_id: int, user_id: int) -> Participant | None:
    return db.session.scalar(select(Participant).where(Participant.competition_id == competition_id,
                                                       Participant.user_id == user_id)
                             .execution_options(populate_existing=True))


def trading_account(competition_id: int, user_id: int) -> tuple[Competition, Participant]:
    """The competition and the trader's account in it, if they may trade in it now."""
    competition = db.session.get(Competition, competition_id, populate_existing=True)
    if competition is None or competition.status == S.DRAFT.value:
        raise NotFound("This competition does not exist.")
    check_open_for_trading(competition)
    return competition, check_participant(_participant(competition_id, user_id))


def account_of(competition_id: int, user_id: int) -> tuple[Competition, Participant]:
    """A RISE_FALL competition and the trader's account in it, whatever its status (to
    read the account's trades: after the end too)."""
    competition = db.session.get(Competition, competition_id, populate_existing=True)
    if competition is None or competition.status == S.DRAFT.value \
            or competition.kind != CompetitionKind.RISE_FALL.value:
        raise NotFound("This competition does not exist.")
    participant = _participant(competition_id, user_id)
    if participant is None or participant.status != ParticipantStatus.ACTIVE.value:
        raise Forbidden("You are not in this competition.")
    return competition, participant


@dataclass(frozen=True)
class CompetitionAccount:
    """A StakeAccount (binary/service.py): the participant's competition account."""

    competition_id: int
    participant_id: int

    def admit(self, market: Market, expires_ms: int) -> None:
        # FOR SHARE: the end step's status UPDATE cannot run between these checks and our
        # commit, so no trade is ever left open behind the end's settlement. SQLite has no
        # row locks and reads outside a transaction: a no-op write takes its one write lock
        # first, so the same holds there.
        if db.engine.dialect.name == "sqlite":
            p = Participant.__table__
            db.session.execute(update(p).where(p.c.id == self.participant_id).values(cash=p.c.cash))
        competition = db.session.scalar(select(Competition, *gate.shared(self.competition_id))
                                        .where(Competition.id == self.competition_id)
                                        .with_for_update(read=True).execution_options(populate_existing=True))
        if competition is None:
            raise NotFound("This competition does not exist.")
        check_open_for_trading(competition)
        check_participant(db.session.get(Participant, self.participant_id, populate_existing=True))
        if not allows_market(competition, market):
            raise TradeError(f"{market.name} is not traded in this competition.", status_code=409)
        if expires_ms > to_ms(competition.end_at):
            raise TradeError(f"This trade would expire at {ms_to_datetime(expires_ms):%H:%M:%S} UTC, after the "
                             f"competition ends ({competition.end_at:%H:%M:%S} UTC): choose a shorter duration.",
                             status_code=409, field="duration")

    def debit(self, amount: Decimal) -> None:
        p = Participant.__table__
        debited = db.session.execute(
            update(p).where(p.c.id == self.participant_id, p.c.cash >= amount)
            .values(cash=p.c.cash - amount, equity=p.c.cash - amount, trades_count=p.c.trades_count + 1)
        ).rowcount
        if debited != 1:
            cash = db.session.scalar(select(p.c.cash).where(p.c.id == self.participant_id))
            raise TradeError(f"Your competition account holds {cash:,.2f} USD: lower the stake.", status_code=409,
                             field="stake")


def place_competition_trade(competition_id: int, user_id: int, symbol: str, direction: str, stake: str | Decimal,
                            duration: str | int, idempotency_key: str) -> Trade:
    """A rise/fall trade with the trader's account in a RISE_FALL competition (one
    transaction, like every placement; refusals change nothing)."""
    _, participant = trading_account(competition_id, user_id)
    account = CompetitionAccount(competition_id, participant.id)
    return place_trade(user_id, symbol, direction, stake, duration, idempotency_key, account=account)


def _trades_of(competition_id: int):
    return Trade.participant_id.in_(select(Participant.id).where(Participant.competition_id == competition_id))


def open_trade_count(competition_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(Trade).where(
        _trades_of(competition_id), Trade.status == TradeStatus.OPEN.value))


def settle_trades_at_end(competition: Competition, end_at: datetime) -> None:
    """Competition closer (lifecycle.close_all_at, in the end step's transaction): settle
    every trade of the competition the settlement clock has not reached yet, each at the
    tick recorded at its OWN expiry (all expire by ``end_at``), exactly once (the same
    status gate as the clock's). If an expiry's tick is not stored yet, SettlementPending:
    the end is retried, never settled at a price taken when it ran."""
    if competition.kind != CompetitionKind.RISE_FALL.value:
        return
    mine = _trades_of(competition.id)
    symbols = db.session.scalars(select(Trade.symbol).where(mine, Trade.status == TradeStatus.OPEN.value)
                                 .distinct().order_by(Trade.symbol)).all()
    for symbol in symbols:
        settle_in_transaction(symbol, to_ms(end_at), mine)
    waiting = open_trade_count(competition.id)
    if waiting:
        raise SettlementPending(f"competition {competition.id}: {waiting} rise/fall trades wait for their expiry "
                                "tick to be stored")


def refuse_rebuy_while_trades_open(participant: Participant) -> None:
    """Rebuy closer (service.close_positions_for_rebuy): a rebuy resets the account, so it
    waits until every rise/fall trade has settled. The no-op UPDATE locks the account first
    (the row a placement debits): no trade can be placed between this count and the reset."""
    p = Participant.__table__
    db.session.execute(update(p).where(p.c.id == participant.id).values(cash=p.c.cash))
    waiting = db.session.scalar(select(func.count()).select_from(Trade).where(
        Trade.participant_id == participant.id, Trade.status == TradeStatus.OPEN.value))
    if waiting:
        raise Conflict(f"You have {waiting} open rise/fall trade{'s' if waiting > 1 else ''}: a rebuy resets your "
                       "account, so it is possible once they have settled.")

