"""The CFD trading terminal of a competition (``/competitions/<slug>/trade``): the chart,
the order ticket, the positions / orders / history tabs and the account bar. Thin views:
parse the request, call ``orders`` (changes) or ``desk`` (reading), render a fragment.

Every action answers HTMX with out-of-band swaps of the book (the tabs and the account
bar) and a fresh client key for the ticket (a placement sends only what it changed: the new
row, its fills, the account bar and the counts); a refused action answers with its message next
to the field it is about (the ticket, an SL/TP edit) or as a toast, and changes nothing."""

from __future__ import annotations

import uuid
from decimal import Decimal

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from .. import metrics
from ..devices import current_device_id
from ..errors import DomainError, NotFound
from ..extensions import limiter
from ..market.quotes import latest_quote
from ..trading_account import use_competition
from ..types import utcnow
from . import bp, desk, fair_play, orders, pages
from .desk import Access

ORDERS_LIMIT = "120 per minute"
REASON_LABELS = {"MARKET": "market order", "LIMIT": "limit order", "STOP": "stop order", "MANUAL": "closed by you",
                 "STOP_LOSS": "stop-loss", "TAKE_PROFIT": "take-profit", "STOP_OUT": "stop-out",
                 "NEGATIVE_BALANCE": "negative-balance protection", "COMPETITION_END": "competition end",
                 "REBUY": "rebuy"}


@bp.app_template_filter("lots")
def format_lots(value: Decimal | None, grouped: bool = False) -> str:
    """Volumes without trailing zeros: 0.1, 2, 100,000."""
    if value is None:
        return "—"
    plain = value.normalize()
    return f"{plain:,f}" if grouped else f"{plain:f}"


bp.add_app_template_global(REASON_LABELS, "reason_labels")


def _is_htmx() -> bool:
    return bool(request.headers.get("HX-Request"))


def new_client_key() -> str:
    return uuid.uuid4().hex


def _trading_desk(slug: str) -> desk.Desk:
    """The desk of a trader who may trade now; anyone else gets the reason."""
    found = desk.open_desk(slug, current_user.id, is_admin=current_user.is_admin)
    if found.access != Access.TRADE:
        messages = {Access.NOT_JOINED: "You are not in this competition.",
                    Access.NOT_LIVE_YET: "This competition has not started yet.",
                    Access.OVER: "This competition has ended: trading is closed.",
                    Access.NOT_CFD: "This competition has no CFD trading."}
        raise DomainError(messages[found.access], status_code=404 if found.access == Access.NOT_JOINED else 409)
    use_competition(found.competition, found.participant)
    return found


def _book(found: desk.Desk) -> dict:
    participant = found.participant
    positions = desk.open_positions(participant.id)
    return {"c": found.competition, "me": participant, "figures": desk.account_figures(participant),
            "positions": positions, "marks": desk.marks(positions), "pending": desk.pending_orders(participant.id),
            "fills": desk.recent_fills(participant.id)}


def _updated(found: desk.Desk, message: str = "", *, key: bool = False, category: str = "success"):
    """After a change: the book, swapped out of band, with a toast saying what happened.
    A plain form (no JavaScript) goes back to the page, with the message flashed."""
    if not _is_htmx():
        if message:
            flash(message, category)
        return redirect(url_for("competitions.terminal", slug=found.competition.slug))
    return render_template("competitions/_cfd_updated.html", message=message, category=category,
                           client_key=new_client_key() if key else None, **_book(found))


@bp.route("/<slug>/trade")
@login_required
def terminal(slug: str):
    found = desk.open_desk(slug, current_user.id, is_admin=current_user.is_admin)
    c = found.competition
    if found.access == Access.OVER:
        return redirect(url_for("competitions.detail", competition_id=c.id))
    if found.participant is not None:
        use_competition(c, found.participant)
    if found.access == Access.TRADE:
        fair_play.record_device(c.id, current_user.id, current_device_id())
    if found.access != Access.TRADE:
        status = 403 if found.access == Access.NOT_JOINED else 200
        return render_template("competitions/terminal_closed.html", c=c, access=found.access.value, now=utcnow(),
                               countdown=pages.countdown, seconds_until=pages.seconds_until), status
    markets = desk.markets(c)
    wanted = (request.args.get("symbol") or "").upper()
    market = next((m for m in markets if m.symbol == wanted), None)
    if market is None:
        market = next((m for m in markets if latest_quote(m.symbol) is not None), markets[0] if markets else None)
    cap = orders.leverage_cap(c, market) if market else 1
    return render_template("competitions/terminal.html", market=market, markets=markets, quote=latest_quote(
        market.symbol) if market else None, leverage_choices=desk.leverage_choices(cap), cap=cap,
        client_key=new_client_key(), countdown=pages.countdown, seconds_until=pages.seconds_until, now=utcnow(),
        **_book(found))


@bp.route("/<slug>/trade/book")
@login_required
def book(slug: str):
    """The tabs and the account bar again (after a fill the engine made, or a reconnect).
    Once the competition is over, the page moves on to its results."""
    found = desk.open_desk(slug, current_user.id, is_admin=current_user.is_admin)
    if found.access == Access.OVER:
        return "", 204, {"HX-Redirect": url_for("competitions.detail", competition_id=found.competition.id)}
    return _updated(_trading_desk(slug))


@bp.route("/<slug>/trade/preview")
@login_required
def preview(slug: str):
    """The ticket's figures before sending: margin required, free margin, P&L at SL/TP."""
    found = _trading_desk(slug)
    return desk.preview(found.competition, found.participant, request.args).as_json()


@bp.route("/<slug>/trade/orders", methods=["POST"])
@limiter.limit(ORDERS_LIMIT)
@login_required
def place(slug: str):
    found = _trading_desk(slug)
    try:
        with metrics.placing("cfd"):
            order, fresh = orders.place_order_once(slug, current_user.id, request.form, competition=found.competition,
                                                   participant=found.participant)
    except DomainError as error:
        if not _is_htmx():
            raise
        return (render_template("competitions/_cfd_ticket_errors.html", error=error),
                error.status_code, {"HX-Reswap": "none"})
    if not _is_htmx():
        flash(desk.order_summary(order), "success")
        return redirect(url_for("competitions.terminal", slug=slug, symbol=order.symbol))
    if not fresh:  # a replay: its rows may or may not be on the page, so the whole book
        return _updated(found, desk.order_summary(order), key=True)
    placed = desk.placed(found.participant.id, order)
    return render_template("competitions/_cfd_placed.html", message=desk.order_summary(order), c=found.competition,
                           me=found.participant, figures=desk.account_figures(found.participant), placed=placed,
                           marks=desk.marks([placed.position] if placed.position is not None else []),
                           client_key=new_client_key())


def _own_order(found: desk.Desk, order_id: int):
    order = desk.own_order(current_user.id, order_id)
    if order.competition_id != found.competition.id:
        raise NotFound("No such order.")
    return order


def _own_position(found: desk.Desk, position_id: int):
    position = desk.own_position(current_user.id, position_id)
    if position.competition_id != found.competition.id:
        raise NotFound("No such position.")
    return position


@bp.route("/<slug>/trade/orders/<int:order_id>/cancel", methods=["POST"])
@limiter.limit(ORDERS_LIMIT)
@login_required
def cancel(slug: str, order_id: int):
    found = _trading_desk(slug)
    _own_order(found, order_id)
    orders.cancel_order(current_user.id, order_id)
    return _updated(found, f"Order #{order_id} cancelled.")


@bp.route("/<slug>/trade/orders/<int:order_id>/modify", methods=["POST"])
@limiter.limit(ORDERS_LIMIT)
@login_required
def modify_order(slug: str, order_id: int):
    found = _trading_desk(slug)
    _own_order(found, order_id)
    try:
        orders.modify_order(current_user.id, order_id, request.form)
    except DomainError as error:
        return _row_error(f"order-{order_id}", error)
    return _updated(found, f"Order #{order_id} changed.")


@bp.route("/<slug>/trade/positions/<int:position_id>/modify", methods=["POST"])
@limiter.limit(ORDERS_LIMIT)
@login_required
def modify_position(slug: str, position_id: int):
    found = _trading_desk(slug)
    _own_position(found, position_id)
    try:
        orders.modify_position(current_user.id, position_id, request.form)
    except DomainError as error:
        return _row_error(f"position-{position_id}", error)
    return _updated(found, f"Position #{position_id}: stop-loss and take-profit saved.")


@bp.route("/<slug>/trade/positions/<int:position_id>/close", methods=["POST"])
@limiter.limit(ORDERS_LIMIT)
@login_required
def close(slug: str, position_id: int):
    found = _trading_desk(slug)
    _own_position(found, position_id)
    lots = (request.form.get("lots") or "").strip() or None
    try:
        fill = orders.close_position_now(current_user.id, position_id, lots)
    except DomainError as error:
        return _row_error(f"position-{position_id}", error)
    return _updated(found, desk.close_summary(position_id, fill))


def _row_error(slot: str, error: DomainError):
    """The message next to the row's form (HTMX), or the error page."""
    if not _is_htmx():
        raise error
    return (render_template("competitions/_cfd_row_error.html", slot=slot, message=error.message),
            error.status_code, {"HX-Reswap": "none"})
