"""Trader pages: the lobby, a competition's page, joining (with a confirmation that shows
the wallet balance after), leaving before the start, and "My competitions". Thin views
over ``service`` (changes) and ``pages`` (reading); a refused action is a DomainError, which
the app answers with a 4xx page or, for HTMX, an error toast."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from ..devices import current_device_id
from ..extensions import limiter
from ..parsing import parse_page
from ..trading_account import use_competition
from ..types import utcnow
from ..wallet.service import get_wallet
from . import bp, fair_play, lifecycle, pages, service
from .models import CompetitionStatus, ParticipantStatus

S = CompetitionStatus
ACTIONS_LIMIT = "30 per minute"


def _is_htmx() -> bool:
    return bool(request.headers.get("HX-Request"))


def _visible(competition_id: int):
    """A competition a trader may see: drafts do not exist for them."""
    competition = service.get_competition(competition_id)
    if competition.status == S.DRAFT.value and not current_user.is_admin:
        abort(404)
    return competition


def _done(message: str, competition):
    """After a join or leave: back to the competition's page (HTMX follows HX-Redirect)."""
    flash(message, "success")
    target = url_for("competitions.detail", competition_id=competition.id)
    if _is_htmx():
        return "", 204, {"HX-Redirect": target}
    return redirect(target)


@bp.route("")
@login_required
def index():
    tab = pages.tab_name(request.args.get("tab"))
    filters = pages.parse_filters(request.args)
    page = pages.lobby(tab, parse_page(request.args.get("page")), filters)
    pools = pages.pools([c.id for c in page.items])
    previews = {c.id: pages.prize_preview(c, pools[c.id]) for c in page.items}
    mine = pages.joined_among(current_user.id, [c.id for c in page.items])
    return render_template("competitions/index.html", tab=tab, tabs=pages.TAB_LABELS, page=page, pools=pools,
                           previews=previews, mine=mine, now=utcnow(), countdown=pages.countdown,
                           seconds_until=pages.seconds_until, filters=filters, fee_choices=pages.FEE_CHOICES,
                           kinds=pages.KIND_LABELS, markets=pages.MARKET_LABELS), 400 if filters.errors else 200


@bp.route("/mine")
@login_required
def mine():
    page = pages.my_entries(current_user.id, parse_page(request.args.get("page")))
    competitions = [p.competition for p in page.items]
    pools = pages.pools([c.id for c in competitions])
    return render_template("competitions/mine.html", page=page, pools=pools, now=utcnow(),
                           countdown=pages.countdown, seconds_until=pages.seconds_until)


@bp.route("/<int:competition_id>")
@login_required
def detail(competition_id: int):
    competition = _visible(competition_id)
    pool = service.pool_balance(competition.id)
    me = service.get_participant(competition.id, current_user.id)
    if me is not None and me.status != ParticipantStatus.ACTIVE.value:
        me = None
    if me is not None:
        use_competition(competition, me)  # the header shows the account this page trades with
    return render_template("competitions/detail.html", c=competition, pool=pool,
                           preview=pages.prize_preview(competition, pool), me=me,
                           participants=pages.participants(competition.id), wallet=get_wallet(current_user.id),
                           now=utcnow(), countdown=pages.countdown(competition), seconds_until=pages.seconds_until,
                           shown_limit=pages.PARTICIPANTS_SHOWN,
                           prizes_held=competition.status == S.ENDED.value and fair_play.open_flag_count(competition.id) > 0,
                           guarantee_short=lifecycle.guarantee_shortfall(competition.id) is not None)


@bp.route("/<int:competition_id>/join", methods=["GET"])
@login_required
def join_confirm(competition_id: int):
    """The confirmation: the fee and the wallet balance after joining."""
    competition = _visible(competition_id)
    wallet = get_wallet(current_user.id)
    template = "competitions/_join_confirm.html" if _is_htmx() else "competitions/join.html"
    return render_template(template, c=competition, wallet=wallet, after=wallet.balance - competition.entry_fee)


@bp.route("/<int:competition_id>/join", methods=["POST"])
@limiter.limit(ACTIONS_LIMIT)
@login_required
def join(competition_id: int):
    competition = _visible(competition_id)
    result = service.join_competition(competition.id, current_user.id)
    fair_play.record_device(competition.id, current_user.id, current_device_id())
    fee = f"{result.fee:.2f} credits paid into the pool" if result.fee > 0 else "free entry"
    return _done(f"You joined {competition.name} ({fee}).", competition)


@bp.route("/<int:competition_id>/leave", methods=["POST"])
@limiter.limit(ACTIONS_LIMIT)
@login_required
def leave(competition_id: int):
    competition = _visible(competition_id)
    refunded = service.leave_competition(competition.id, current_user.id)
    return _done(f"You left {competition.name}; {refunded:.2f} credits refunded.", competition)


@bp.route("/<int:competition_id>/rebuy", methods=["POST"])
@limiter.limit(ACTIONS_LIMIT)
@login_required
def rebuy(competition_id: int):
    competition = _visible(competition_id)
    number = service.rebuy(competition.id, current_user.id)
    return _done(f"Rebuy {number}: your account is back to {competition.starting_capital:,.2f} USD "
                 f"({competition.rebuy_fee:.2f} credits into the pool).", competition)
