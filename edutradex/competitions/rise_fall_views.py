"""The rise/fall trade page of a RISE_FALL competition: the binary trade page (same
ticket, chart and activity) trading with the participant's competition account. Thin:
the rules are in rise_fall.py, the page in binary/views.py."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_login import current_user, login_required

from ..binary.views import TradePageUrls, activity_response, marks_response, placed_response, render_trade_page
from ..devices import current_device_id
from ..errors import Conflict
from ..market.service import list_markets
from ..trading_account import use_competition
from . import bp, fair_play, rise_fall


def _urls(competition_id: int) -> TradePageUrls:
    return TradePageUrls(
        place=url_for("competitions.rise_fall_place", competition_id=competition_id),
        activity=url_for("competitions.rise_fall_activity", competition_id=competition_id),
        trade=url_for("competitions.rise_fall_trade", competition_id=competition_id, symbol="__SYMBOL__"),
        marks=url_for("competitions.rise_fall_marks", competition_id=competition_id, symbol="__SYMBOL__"),
        history=None)


@bp.route("/<int:competition_id>/rise-fall")
@bp.route("/<int:competition_id>/rise-fall/<symbol>")
@login_required
def rise_fall_trade(competition_id: int, symbol: str | None = None):
    try:
        competition, me = rise_fall.trading_account(competition_id, current_user.id)
    except Conflict as closed:  # not started, ended or cancelled: the competition's page says why
        flash(closed.message, "error")
        return redirect(url_for("competitions.detail", competition_id=competition_id))
    use_competition(competition, me)  # the header shows the competition account
    fair_play.record_device(competition.id, current_user.id, current_device_id())
    markets = [m for m in list_markets(active_only=True) if rise_fall.allows_market(competition, m)]
    return render_trade_page(symbol, markets, _urls(competition_id), participant_id=me.id, competition=competition,
                             me=me)


@bp.route("/<int:competition_id>/rise-fall/place", methods=["POST"])
@login_required
def rise_fall_place(competition_id: int):
    form = request.form

    def place():
        trade = rise_fall.place_competition_trade(competition_id, current_user.id, form.get("symbol", ""),
                                                  form.get("direction", ""), form.get("stake", ""),
                                                  form.get("duration", ""), form.get("idempotency_key", ""))
        use_competition(*rise_fall.account_of(competition_id, current_user.id))  # the badge's new amount
        return trade

    return placed_response(place, _urls(competition_id).trade)


@bp.route("/<int:competition_id>/rise-fall/activity")
@login_required
def rise_fall_activity(competition_id: int):
    competition, me = rise_fall.account_of(competition_id, current_user.id)
    use_competition(competition, me)
    return activity_response(me.id)


@bp.route("/<int:competition_id>/rise-fall/<symbol>/marks")
@login_required
def rise_fall_marks(competition_id: int, symbol: str):
    _, me = rise_fall.account_of(competition_id, current_user.id)
    return marks_response(symbol, me.id)
