"""Trade page (HTMX panel beside the chart) and trade history. Thin: parse, call the
service, render."""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from flask import Response, abort, redirect, render_template, request, stream_with_context, url_for
from flask_login import current_user, login_required

from .. import metrics
from ..errors import DomainError
from ..extensions import db
from ..market.models import Market
from ..market.quotes import latest_quote, now_ms
from ..market.service import grouped_markets, list_markets, market_view, needs_provider
from ..parsing import parse_page
from ..settings import get_setting
from . import bp
from .models import Trade
from .service import (
    HistoryFilter,
    chart_mark,
    chart_trades,
    history_query,
    open_trades,
    place_trade,
    recent_trades,
    trade_for_user,
    trade_stats,
)

QUICK_STAKES = (Decimal("1"), Decimal("5"), Decimal("10"), Decimal("25"), Decimal("50"), Decimal("100"), Decimal("500"))
HISTORY_PAGE_SIZE = 25
# The server's clock on every trade-panel fragment: the page's countdowns run on it
# (binary-trade.js), never on a time rendered into the page when it was loaded.
SERVER_TIME_HEADER = "X-Server-Now-Ms"


def new_idempotency_key() -> str:
    return secrets.token_urlsafe(16)


def is_htmx() -> bool:
    return bool(request.headers.get("HX-Request"))


def with_server_time(body: str) -> tuple[str, dict[str, str]]:
    """Stamped after rendering, as close to sending as a view gets."""
    return body, {SERVER_TIME_HEADER: str(now_ms())}


@dataclass(frozen=True)
class TradePageUrls:
    """Where the trade page of one account sends its requests: the demo balance's own
    routes here, a RISE_FALL competition account's in competitions/rise_fall_views.py."""
    place: str
    activity: str
    trade: str  # with __SYMBOL__ in place of the symbol
    marks: str  # with __SYMBOL__ in place of the symbol
    history: str | None  # the full history (the demo account's only)


def demo_urls() -> TradePageUrls:
    return TradePageUrls(place=url_for("binary.place"), activity=url_for("binary.activity"),
                         trade=url_for("binary.trade", symbol="__SYMBOL__"),
                         marks=url_for("binary.chart_marks", symbol="__SYMBOL__"), history=url_for("binary.history"))


def render_trade_page(symbol: str | None, markets: list[Market], urls: TradePageUrls,
                      participant_id: int | None = None, **context):
    """The trade page for one account (``participant_id``: None = the demo balance)."""
    if not markets:
        return render_template("binary/trade.html", market=None, markets=[], urls=urls, **context)
    if symbol is None:
        live = next((m for m in markets if latest_quote(m.symbol) is not None), markets[0])
        return redirect(urls.trade.replace("__SYMBOL__", live.symbol))
    market = next((m for m in markets if m.symbol == symbol.upper()), None)
    if market is None:
        abort(404)
    quote = latest_quote(market.symbol)
    view = market_view(market)
    stakes = [s for s in QUICK_STAKES if market.min_stake <= s <= market.max_stake] or [market.min_stake]
    default_stake = Decimal("10") if market.min_stake <= Decimal("10") <= market.max_stake else market.min_stake
    return render_template(
        "binary/trade.html", market=market, markets=markets, market_groups=grouped_markets(markets), quote=quote,
        market_message=view.message if view.status != "live" else None, needs_provider=needs_provider,
        quick_stakes=stakes,
        default_stake=default_stake, durations=get_setting("allowed_durations"),
        idempotency_key=new_idempotency_key(), open_trades=open_trades(current_user.id, participant_id),
        recent=recent_trades(current_user.id, participant_id=participant_id), now_ms=now_ms(), urls=urls, **context,
    )


@bp.route("/trade")
@bp.route("/trade/<symbol>")
@login_required
def trade(symbol: str | None = None):
    return render_trade_page(symbol, list_markets(active_only=True), demo_urls())


def placed_response(place: Callable[[], Trade], page_url: str):
    """The answer to a placement: the new open-trade row (HTMX), or each refusal next to
    what it is about in the ticket, with nothing else moving."""
    try:
        with metrics.placing("rise_fall"):
            trade = place()
    except DomainError as exc:
        if not is_htmx():
            raise
        return render_template("binary/_ticket_errors.html", error=exc), exc.status_code, {"HX-Reswap": "none"}
    # No toast: the new open-trade row is the confirmation (a toast would cover the ticket).
    if not is_htmx():
        return redirect(page_url.replace("__SYMBOL__", trade.symbol))
    # Only the new row (appended to the list by the page): O(1) whatever the open trades.
    return with_server_time(render_template("binary/_placed.html", trade=trade, idempotency_key=new_idempotency_key()))


@bp.route("/trade/place", methods=["POST"])
@login_required
def place():
    form = request.form
    return placed_response(lambda: place_trade(current_user.id, form.get("symbol", ""), form.get("direction", ""),
                                               form.get("stake", ""), form.get("duration", ""),
                                               form.get("idempotency_key", "")),
                           url_for("binary.trade", symbol="__SYMBOL__"))


def activity_response(participant_id: int | None = None):
    return with_server_time(render_template("binary/_activity.html",
                                            open_trades=open_trades(current_user.id, participant_id),
                                            recent=recent_trades(current_user.id, participant_id=participant_id)))


@bp.route("/trade/activity")
@login_required
def activity():
    """Open trades and recent results, refreshed by the page after a settlement."""
    return activity_response()


CHART_MARKS_SECONDS = 86_400


def marks_response(symbol: str, participant_id: int | None = None) -> dict:
    """One account's trades on a symbol over the last day, for the chart's markers."""
    trades = chart_trades(current_user.id, symbol.upper(), now_ms() - CHART_MARKS_SECONDS * 1000,
                          participant_id=participant_id)
    return {"symbol": symbol.upper(), "trades": [chart_mark(t) for t in trades]}


@bp.route("/trade/<symbol>/marks")
@login_required
def chart_marks(symbol: str):
    return marks_response(symbol)


def _filters() -> HistoryFilter:
    args = request.args
    return HistoryFilter.parse(args.get("symbol"), args.get("result"), args.get("date_from"), args.get("date_to"))


@bp.route("/history")
@login_required
def history():
    symbols = [m.symbol for m in list_markets()]
    try:
        filters = _filters()
    except DomainError as exc:
        # The filter form again, with what was typed and each message by its field.
        return render_template("binary/history.html", filter_error=exc, form_values=request.args, symbols=symbols), 400
    pagination = db.paginate(history_query(current_user.id, filters), page=parse_page(request.args.get("page")),
                             per_page=HISTORY_PAGE_SIZE,
                             error_out=False)
    return render_template("binary/history.html", pagination=pagination, trades=pagination.items, filters=filters,
                           form_values=filters.as_args(), stats=trade_stats(current_user.id, filters), symbols=symbols)


@bp.route("/history/<int:trade_id>")
@login_required
def trade_detail(trade_id: int):
    return render_template("binary/detail.html", trade=trade_for_user(current_user.id, trade_id))


CSV_COLUMNS = ("id", "symbol", "direction", "stake", "payout_percent", "potential_payout", "status", "result", "rule",
               "payout", "profit", "opened_at", "expires_at", "settled_at", "entry_price", "entry_tick_id",
               "entry_ts_ms", "exit_price", "exit_tick_id", "exit_ts_ms")


@bp.route("/history.csv")
@login_required
def history_csv():
    filters = _filters()
    user_id = current_user.id
    query = history_query(user_id, filters).execution_options(yield_per=500)

    def rows():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        for trade in db.session.scalars(query):
            writer.writerow(["" if (value := getattr(trade, column)) is None else
                             value.isoformat() if hasattr(value, "isoformat") else value for column in CSV_COLUMNS])
            if buffer.tell() > 16384:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return Response(stream_with_context(rows()), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=edutradex-trades.csv"})
