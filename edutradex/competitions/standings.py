"""What the leaderboard pages show: the live board (from the shared board and its frame,
the frozen snapshot for the public during a freeze), a trader's own row (always live), the
final standings with prizes, and a participant's public card (their trades become public
when the competition ends). Reading only."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select

from ..auth.models import User
from ..errors import Forbidden, NotFound
from ..extensions import db
from ..types import utcnow
from . import leaderboard as lb
from .models import CfdFill, CfdPosition, Competition, CompetitionStatus, Participant, ParticipantStatus
from .returns import return_percent

S = CompetitionStatus
PER_PAGE = lb.FRAME_SIZE
FINISHED = (S.ENDED.value, S.SETTLED.value)


@dataclass(frozen=True)
class BoardPage:
    view: str
    rows: list[dict]
    counts: dict
    page: int
    pages: int
    frozen_at: datetime | None
    reader_rank: tuple[int, lb.Entry] | None = None  # the reader's own, read with the frame


def board_page(competition: Competition, view: str, page: int, reader_id: int | None = None) -> BoardPage:
    """A page of the board as ``view`` shows it: page 1 is the shared frame (built once a
    second); further pages are read from the shared board. With ``reader_id`` (a
    participant), their rank in this view comes in the same round trip."""
    reader_rank = None
    if reader_id is None:
        shared = lb.frame(competition.id, view)
    else:
        shared, reader_rank = lb.frame_and_rank(competition.id, reader_id, view)
    if shared is not None:
        counts = shared["counts"]
    else:
        found = lb.counts(competition.id, competition.starting_capital, view)
        counts = {"participants": found.participants, "above_start": found.above_start}
    pages = max(1, -(-counts["participants"] // PER_PAGE))
    page = min(page, pages)
    frozen_page = lb.frame(competition.id, lb.frozen_page_view(page)) if view == lb.FROZEN and page > 1 else None
    if page == 1 and shared is not None:
        rows = shared["rows"]
    elif frozen_page is not None:  # built when the freeze began
        rows = frozen_page["rows"]
    else:
        offset = (page - 1) * PER_PAGE
        entries = lb.top(competition.id, offset, PER_PAGE, view)
        rows = lb.build_frame(competition, view, entries, {}, lb.Counts(0, 0), utcnow(), first_rank=offset + 1)["rows"]
    return BoardPage(view, rows, counts, page, pages, competition.frozen_at if view == lb.FROZEN else None,
                     reader_rank)


def _elapsed(competition: Competition, now: datetime) -> int:
    end = min(now, competition.end_at)
    return max(0, int((end - (competition.started_at or competition.start_at)).total_seconds()))


def participant_return(competition: Competition, participant: Participant, equity: Decimal,
                       now: datetime | None = None) -> Decimal:
    return return_percent(equity, competition.starting_capital, participant.topped_up,
                          participant.topped_up_cent_seconds, _elapsed(competition, now or utcnow()))


def my_row(competition: Competition, participant: Participant, view: str, board: BoardPage | None = None) -> dict:
    """A trader's own pinned row: their live equity (the live board, re-ranked each second;
    the database if they are not on it); the rank as the public board shows it (frozen
    during a freeze: the live rank would tell the others' moves). With rebuys the board holds
    scores, not equities: the equity is the row's (saved every LEADERBOARD_PERSIST_SECONDS;
    the ``leaderboard_me`` frames bring the live one)."""
    found = board.reader_rank if board is not None else lb.rank_of(competition.id, participant.id, view)
    if competition.rebuys_allowed:
        equity = participant.equity
    else:
        live = found if view == lb.LIVE else lb.rank_of(competition.id, participant.id, lb.LIVE)
        equity = live[1].equity if live else participant.equity
    return {"rank": found[0] if found else None, "equity": f"{equity:.2f}",
            "return_percent": str(participant_return(competition, participant, equity)),
            "trades": participant.trades_count, "participant_id": participant.id}


@dataclass(frozen=True)
class Standing:
    participant: Participant
    name: str
    return_percent: Decimal | None


def final_standings(competition: Competition, page: int):
    """Every active participant by final rank (unranked last), with prizes once settled."""
    query = (select(Participant, User.name).join(User, User.id == Participant.user_id)
             .where(Participant.competition_id == competition.id, Participant.status == ParticipantStatus.ACTIVE.value)
             .order_by(Participant.final_rank.is_(None), Participant.final_rank, Participant.final_equity.desc(),
                       Participant.id))
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    pages = max(1, -(-total // PER_PAGE))
    page = min(page, pages)
    rows = [Standing(p, name, participant_return(competition, p, p.final_equity) if p.final_equity is not None
                     else None)
            for p, name in db.session.execute(query.offset((page - 1) * PER_PAGE).limit(PER_PAGE))]
    return rows, page, pages


@dataclass
class Card:
    participant: Participant
    name: str
    finished: bool
    rank: int | None
    equity: Decimal | None
    return_percent: Decimal | None
    curve: list[tuple[datetime, Decimal]] = field(default_factory=list)
    max_drawdown: Decimal | None = None
    win_rate: str | None = None
    trades: list[CfdPosition] = field(default_factory=list)

    def svg_points(self, width: int = 600, height: int = 160) -> str:
        """The equity curve as an SVG polyline's points (step by step, not by time)."""
        if len(self.curve) < 2:
            return ""
        values = [v for _, v in self.curve]
        low, high = min(values), max(values)
        span = (high - low) or Decimal(1)
        step = width / (len(values) - 1)
        return " ".join(f"{i * step:.1f},{float(height - (v - low) / span * height):.1f}" for i, v in enumerate(values))


def _participant(competition: Competition, participant_id: int) -> tuple[Participant, str]:
    row = db.session.execute(select(Participant, User.name).join(User, User.id == Participant.user_id).where(
        Participant.id == participant_id, Participant.competition_id == competition.id,
        Participant.status == ParticipantStatus.ACTIVE.value)).first()
    if row is None:
        raise NotFound("This trader is not in this competition.")
    return row[0], row[1]


def realised_curve(competition: Competition, participant_id: int) -> list[tuple[datetime, Decimal]]:
    """Starting capital plus the realised P&L of each close, in order (open positions and
    rebuy resets are not in it: a curve of closed trades)."""
    equity = competition.starting_capital
    curve = [(competition.started_at or competition.start_at, equity)]
    for at, pnl in db.session.execute(select(CfdFill.created_at, CfdFill.realized_pnl).where(
            CfdFill.participant_id == participant_id, CfdFill.realized_pnl.is_not(None)).order_by(CfdFill.id)):
        equity += pnl
        curve.append((at, equity))
    return curve


def max_drawdown(curve: list[tuple[datetime, Decimal]]) -> Decimal | None:
    """The largest fall from a peak, in percent of that peak; None without a close."""
    if len(curve) < 2:
        return None
    peak, worst = curve[0][1], Decimal(0)
    for _, value in curve:
        peak = max(peak, value)
        if peak > 0:
            worst = max(worst, (peak - value) * 100 / peak)
    return worst.quantize(Decimal("0.01"))


def trader_card(competition: Competition, participant_id: int) -> Card:
    """During the contest: rank and equity as the public board shows them (the frozen
    snapshot during a freeze). After the end: the final result, the equity curve, the trades."""
    participant, name = _participant(competition, participant_id)
    if competition.status not in FINISHED:
        view = lb.public_view(competition)
        found = lb.rank_of(competition.id, participant.id, view)
        equity = found[1].equity if found else None
        if found and competition.rebuys_allowed:  # the board holds scores: the equity is the row's
            equity = participant.frozen_equity if view == lb.FROZEN else participant.equity
        returned = participant_return(competition, participant, equity) if equity is not None else None
        if found and view == lb.FROZEN:  # the return as the frozen board shows it (rebuys since are not in it)
            page = lb.frame(competition.id, lb.frozen_page_view((found[0] - 1) // PER_PAGE + 1))
            row = next((r for r in (page or {}).get("rows", []) if r["participant_id"] == participant.id), None)
            returned = Decimal(row["return_percent"]) if row else returned
        return Card(participant, name, False, found[0] if found else None, equity, returned)
    curve = realised_curve(competition, participant.id)
    trades = list(db.session.scalars(select(CfdPosition).where(CfdPosition.participant_id == participant.id)
                                     .order_by(CfdPosition.opened_at, CfdPosition.id)))
    closed = [t for t in trades if t.closed_at is not None]
    return Card(participant, name, True, participant.final_rank, participant.final_equity,
                participant_return(competition, participant, participant.final_equity)
                if participant.final_equity is not None else None,
                curve=curve, max_drawdown=max_drawdown(curve),
                win_rate=lb.win_rate(sum(1 for t in closed if t.realized_pnl > 0), len(closed)), trades=trades)


TRADE_COLUMNS = ("position_id", "symbol", "side", "lots", "leverage", "open_price", "opened_at_utc", "close_price",
                 "closed_at_utc", "close_reason", "realized_pnl_usd")


def trades_csv(competition: Competition, participant_id: int) -> Iterator[str]:
    """Every position of the participant, public once the competition has ended."""
    if competition.status not in FINISHED:
        raise Forbidden("Trades become public when the competition ends.")
    participant, _ = _participant(competition, participant_id)
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate(0)
        return text

    writer.writerow(TRADE_COLUMNS)
    yield flush()
    query = (select(CfdPosition).where(CfdPosition.participant_id == participant.id)
             .order_by(CfdPosition.opened_at, CfdPosition.id).execution_options(yield_per=500))
    for t in db.session.scalars(query):
        writer.writerow([t.id, t.symbol, t.side, t.opened_lots, t.leverage, t.open_price,
                         t.opened_at.strftime("%Y-%m-%d %H:%M:%S"), t.close_price if t.close_price is not None else "",
                         t.closed_at.strftime("%Y-%m-%d %H:%M:%S") if t.closed_at else "", t.close_reason or "",
                         f"{t.realized_pnl:.2f}"])
        yield flush()
