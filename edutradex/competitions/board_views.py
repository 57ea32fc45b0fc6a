"""The leaderboard pages: the live board (your own row pinned, 100 a page), its counts, the
final standings with prizes, and a participant's public card with their trades as CSV.
Thin views over ``standings``; admins see the live board during a freeze, everyone else
the snapshot."""

from __future__ import annotations

from flask import Response, make_response, redirect, render_template, request, stream_with_context, url_for
from flask_login import current_user, login_required

from ..parsing import parse_page
from ..types import utcnow
from . import bp, leaderboard, service, standings
from .models import CompetitionStatus, ParticipantStatus
from .views import _is_htmx, _visible

S = CompetitionStatus


def _view(competition) -> str:
    return leaderboard.LIVE if current_user.is_admin else leaderboard.public_view(competition)


def _private(body):
    """The board page pins the reader's own row, and admins see another view than traders:
    no shared cache (a proxy, a CDN) may keep it for someone else."""
    response = make_response(body)
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _me(competition):
    me = service.get_participant(competition.id, current_user.id)
    return me if me is not None and me.status == ParticipantStatus.ACTIVE.value else None


@bp.route("/<int:competition_id>/leaderboard")
@login_required
def leaderboard_page(competition_id: int):
    competition = _visible(competition_id)
    if competition.status in standings.FINISHED:
        return redirect(url_for("competitions.standings_page", competition_id=competition.id))
    view = _view(competition)
    me = _me(competition)
    if competition.status != S.LIVE.value:
        me = None
    board = standings.board_page(competition, view, parse_page(request.args.get("page")), me.id if me else None)
    mine = standings.my_row(competition, me, view, board) if me is not None else None
    template = "competitions/_board.html" if _is_htmx() else "competitions/leaderboard.html"
    return _private(render_template(template, c=competition, board=board, mine=mine,
                                    live=competition.status == S.LIVE.value,
                                    admin_view=current_user.is_admin and competition.frozen_at is not None))


@bp.route("/<int:competition_id>/leaderboard/counts")
@login_required
def leaderboard_counts(competition_id: int):
    competition = _visible(competition_id)
    view = _view(competition)
    board = standings.board_page(competition, view, 1)
    return _private({"id": competition.id, "view": view, **board.counts})


@bp.route("/<int:competition_id>/standings")
@login_required
def standings_page(competition_id: int):
    competition = _visible(competition_id)
    if competition.status not in standings.FINISHED:
        return redirect(url_for("competitions.leaderboard_page", competition_id=competition.id))
    rows, page, pages = standings.final_standings(competition, parse_page(request.args.get("page")))
    return render_template("competitions/standings.html", c=competition, rows=rows, page=page, pages=pages)


@bp.route("/<int:competition_id>/traders/<int:participant_id>")
@login_required
def trader_card(competition_id: int, participant_id: int):
    competition = _visible(competition_id)
    card = standings.trader_card(competition, participant_id)
    return render_template("competitions/trader_card.html", c=competition, card=card, now=utcnow())


@bp.route("/<int:competition_id>/traders/<int:participant_id>/trades.csv")
@login_required
def trader_trades_csv(competition_id: int, participant_id: int):
    competition = _visible(competition_id)
    rows = standings.trades_csv(competition, participant_id)
    first = next(rows)  # refusals (not ended, not a participant) before the response starts
    body = stream_with_context(_chain(first, rows))
    name = f"{competition.slug}-trader-{participant_id}-trades.csv"
    return Response(body, mimetype="text/csv", headers={"Content-Disposition": f"attachment; filename={name}"})


def _chain(first: str, rest):
    yield first
    yield from rest
