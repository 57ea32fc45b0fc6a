"""The journal of an account: its closed trades (one query, notes joined in), their
figures (stats.py) and the trader's notes and tags on them.

Accounts: the demo account (settled rise/fall trades without a competition) and each
competition account (its settled rise/fall trades, or its closed CFD positions; a CFD
position is one trade, its P&L the sum of its closes)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from flask import current_app
from sqlalchemy import and_, select
from sqlalchemy.exc import IntegrityError

from ..binary.models import Trade, TradeStatus
from ..competitions.models import CfdPosition, Competition, CompetitionKind, Participant, PositionStatus
from ..errors import DomainError, InvalidFields, NotFound
from ..extensions import db
from .models import JournalNote, TradeKind
from .stats import JournalStats, journal_stats

NOTE_MAX = 2000
TAG_MAX = 24
TAGS_MAX = 8
TAG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass(frozen=True)
class Account:
    """Whose journal: the demo account (competition None) or a competition account."""
    user_id: int
    title: str
    starting_equity: Decimal
    competition: Competition | None = None
    participant: Participant | None = None

    @property
    def kind(self) -> TradeKind:
        if self.competition is not None and self.competition.kind == CompetitionKind.CFD.value:
            return TradeKind.CFD
        return TradeKind.RISE_FALL


@dataclass(frozen=True)
class JournalTrade:
    kind: str
    id: int
    symbol: str
    side: str  # UP / DOWN, or BUY / SELL
    size: Decimal  # stake or lots
    entry: Decimal
    exit: Decimal | None
    opened_at: datetime
    closed_at: datetime
    outcome: str  # WIN / LOSS / TIE, or a CFD close reason
    pnl: Decimal
    note: str
    tags: list[str]


def demo_account(user_id: int) -> Account:
    return Account(user_id, "Demo account", Decimal(current_app.config["DEFAULT_DEMO_BALANCE"]))


def competition_account(user_id: int, competition_id: int) -> Account:
    """The user's own account in the competition; not a participant (or no such competition) -> 404."""
    participant = db.session.scalar(select(Participant).where(
        Participant.competition_id == competition_id, Participant.user_id == user_id))
    if participant is None:
        raise NotFound("You have no account in that competition.")
    competition = participant.competition
    return Account(user_id, competition.name, competition.starting_capital, competition, participant)


def competition_journals(user_id: int) -> list[tuple[int, str]]:
    """(competition id, name) of every competition the user has an account in, newest first."""
    return [tuple(row) for row in db.session.execute(
        select(Competition.id, Competition.name).join(Participant, Participant.competition_id == Competition.id)
        .where(Participant.user_id == user_id).order_by(Competition.start_at.desc(), Competition.id.desc()))]


def _note_join(kind: TradeKind, trade_id_column):
    return and_(JournalNote.trade_kind == kind.value, JournalNote.trade_id == trade_id_column)


def closed_trades(account: Account) -> list[JournalTrade]:
    """Every closed trade of the account, newest first, with its note: one query."""
    if account.kind is TradeKind.CFD:
        query = (select(CfdPosition.id, CfdPosition.symbol, CfdPosition.side, CfdPosition.opened_lots,
                        CfdPosition.open_price, CfdPosition.close_price, CfdPosition.opened_at,
                        CfdPosition.closed_at, CfdPosition.close_reason, CfdPosition.realized_pnl,
                        JournalNote.note, JournalNote.tags)
                 .outerjoin(JournalNote, _note_join(TradeKind.CFD, CfdPosition.id))
                 .where(CfdPosition.participant_id == account.participant.id,
                        CfdPosition.status == PositionStatus.CLOSED.value)
                 .order_by(CfdPosition.closed_at.desc(), CfdPosition.id.desc()))
        return [JournalTrade(TradeKind.CFD.value, pid, symbol, side, lots, open_price, close_price, opened_at,
                             closed_at, reason or "", pnl, note or "", tags or [])
                for pid, symbol, side, lots, open_price, close_price, opened_at, closed_at, reason, pnl, note, tags
                in db.session.execute(query)]
    participant_filter = (Trade.participant_id.is_(None) if account.participant is None
                          else Trade.participant_id == account.participant.id)
    query = (select(Trade.id, Trade.symbol, Trade.direction, Trade.stake, Trade.entry_price, Trade.exit_price,
                    Trade.opened_at, Trade.settled_at, Trade.result, Trade.payout, JournalNote.note, JournalNote.tags)
             .outerjoin(JournalNote, _note_join(TradeKind.RISE_FALL, Trade.id))
             .where(Trade.user_id == account.user_id, participant_filter, Trade.status == TradeStatus.SETTLED.value)
             .order_by(Trade.settled_at.desc(), Trade.id.desc()))
    return [JournalTrade(TradeKind.RISE_FALL.value, tid, symbol, direction, stake, entry, exit_price, opened_at,
                         settled_at, result or "", (payout or Decimal("0")) - stake, note or "", tags or [])
            for tid, symbol, direction, stake, entry, exit_price, opened_at, settled_at, result, payout, note, tags
            in db.session.execute(query)]


def stats_of(account: Account, trades: list[JournalTrade]) -> JournalStats:
    return journal_stats(((t.closed_at, t.symbol, t.pnl) for t in trades), account.starting_equity)


def equity_points(stats: JournalStats) -> list[dict]:
    """The curve for the chart: one point per second (the last equity of that second),
    starting from the starting equity one second before the first close."""
    points: dict[int, str] = {}
    for closed_at, equity in stats.equity_curve:
        points[int(closed_at.timestamp())] = str(equity)
    if points:
        first = min(points)
        points = {first - 1: str(stats.starting_equity), **points}
    return [{"time": t, "value": v} for t, v in sorted(points.items())]


# ---- notes and tags -------------------------------------------------------------------

def normalise_tags(raw: str) -> list[str]:
    """"Breakout, news  #FOMO" -> ["breakout", "fomo", "news"]: split on commas and spaces,
    lower-case, '#' dropped, unique, sorted. Refuses tags that are too long or odd."""
    tags = sorted({part.lstrip("#").lower() for part in re.split(r"[,\s]+", raw or "") if part.lstrip("#")})
    for tag in tags:
        if len(tag) > TAG_MAX:
            raise DomainError(f"A tag has at most {TAG_MAX} characters ({tag[:TAG_MAX]}… is longer).", field="tags")
        if not TAG_PATTERN.match(tag):
            raise DomainError(f"Tag {tag[:TAG_MAX]!r}: use letters, digits, '-' and '_' only.", field="tags")
    if len(tags) > TAGS_MAX:
        raise DomainError(f"At most {TAGS_MAX} tags on a trade.", field="tags")
    return tags


def _owned_trade(user_id: int, kind: str, trade_id: int) -> None:
    """The trade exists, is closed and is the user's; anything else is a 404 (someone
    else's trade looks exactly like a missing one)."""
    if kind == TradeKind.RISE_FALL.value:
        owner = db.session.scalar(select(Trade.user_id).where(
            Trade.id == trade_id, Trade.status == TradeStatus.SETTLED.value))
    elif kind == TradeKind.CFD.value:
        owner = db.session.scalar(select(CfdPosition.user_id).where(
            CfdPosition.id == trade_id, CfdPosition.status == PositionStatus.CLOSED.value))
    else:
        owner = None
    if owner is None or owner != user_id:
        raise NotFound("No such closed trade of yours.")


def save_note(user_id: int, kind: str, trade_id: int, note: str, tags: str) -> JournalNote:
    """Set the note and tags of one of the user's closed trades (empty both: no note); commits."""
    _owned_trade(user_id, kind, trade_id)
    note = (note or "").replace("\r\n", "\n").strip()
    errors = {}
    if len(note) > NOTE_MAX:
        errors["note"] = f"A note has at most {NOTE_MAX} characters (this one has {len(note)})."
    try:
        tag_list = normalise_tags(tags)
    except DomainError as err:
        errors["tags"] = err.message
    if errors:
        raise InvalidFields(errors)
    row = db.session.scalar(select(JournalNote).where(JournalNote.trade_kind == kind, JournalNote.trade_id == trade_id))
    if row is None:
        row = JournalNote(user_id=user_id, trade_kind=kind, trade_id=trade_id)
        db.session.add(row)
    row.note, row.tags = note, tag_list
    try:
        db.session.commit()
    except IntegrityError:  # a second tab saved the first note at the same moment: update that one
        db.session.rollback()
        row = db.session.scalar(select(JournalNote).where(JournalNote.trade_kind == kind,
                                                          JournalNote.trade_id == trade_id))
        row.note, row.tags = note, tag_list
        db.session.commit()
    return row


def trade_with_note(account: Account, kind: str, trade_id: int) -> JournalTrade:
    for trade in closed_trades(account):
        if trade.kind == kind and trade.id == trade_id:
            return trade
    raise NotFound("No such closed trade of yours.")


# ---- CSV --------------------------------------------------------------------------------

CSV_COLUMNS = ("kind", "trade_id", "symbol", "side", "size", "entry", "exit", "opened_at", "closed_at",
               "outcome", "pnl", "note", "tags")


def _cell(value) -> str:
    """A spreadsheet must not run a note as a formula (CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return False
    return True


def csv_lines(trades: list[JournalTrade]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for t in sorted(trades, key=lambda t: (t.closed_at, t.id)):
        writer.writerow([_cell(v) for v in (
            t.kind, t.id, t.symbol, t.side, t.size, t.entry, t.exit, t.opened_at.isoformat(),
            t.closed_at.isoformat(), t.outcome, t.pnl, t.note, " ".join(t.tags))])
    yield buffer.getvalue()
