"""Markets pages and the market data API (thin: parse, call the service, render)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from flask import current_app, jsonify, redirect, render_template, request, send_file, url_for

from ..errors import DomainError
from . import bp, candles, fairness, quotes, service
from .models import MarketType


def _bad_request(message: str):
    return jsonify(error=message), 400


def _unix_seconds(name: str) -> int:
    raw = request.args.get(name)
    if raw is None or raw.strip() == "":
        raise DomainError(f"Missing '{name}' (Unix time in seconds).")
    try:
        value = float(raw)
    except ValueError:
        raise DomainError(f"'{name}' must be a Unix time in seconds, not {raw[:20]!r}.") from None
    if not math.isfinite(value) or not 0 <= value <= 32503680000:  # up to the year 3000
        raise DomainError(f"'{name}' must be a Unix time in seconds between 1970 and 3000.")
    return int(value)


def _api_market(symbol: str):
    try:
        return service.get_market(symbol)
    except DomainError as err:
        raise DomainError(err.message, status_code=400) from None


@bp.route("/api/markets/<symbol>/candles")
def api_candles(symbol: str):
    market = _api_market(symbol)
    resolution = request.args.get("resolution", "1m")
    if resolution not in candles.RESOLUTIONS:
        return _bad_request(f"Unknown resolution {resolution[:10]!r}; use one of {', '.join(candles.RESOLUTIONS)}.")
    seconds = candles.RESOLUTIONS[resolution]
    start, end = _unix_seconds("from"), _unix_seconds("to")
    if start > end:
        return _bad_request("'from' must not be after 'to'.")
    cap = current_app.config["CANDLES_MAX"]
    count = (candles.bucket(end, seconds) - candles.bucket(start, seconds)) // seconds + 1
    if count > cap:
        return _bad_request(f"That range holds {count} {resolution} candles; ask for at most {cap} at a time.")
    bars = candles.candles(market.symbol, seconds, start, end)
    quantum = service.price_quantum(market.precision)
    return jsonify([{"time": b.start_s, "open": str(b.open.quantize(quantum)), "high": str(b.high.quantize(quantum)),
                     "low": str(b.low.quantize(quantum)), "close": str(b.close.quantize(quantum))} for b in bars])


@bp.route("/api/markets/<symbol>/quote")
def api_quote(symbol: str):
    market = _api_market(symbol)
    view = service.market_view(market)
    return jsonify(view.as_json()), 200


@bp.route("/api/markets")
def api_markets():
    market_type = request.args.get("type") or None
    return jsonify([service.market_view(m).as_json() for m in service.list_markets(market_type, active_only=True)])


@bp.route("/markets")
def index():
    market_type = request.args.get("type") or None
    if market_type and market_type not in MarketType.__members__:
        market_type = None
    # list_markets' order (OTC, volatility indices, FOREX; names sorted naturally), with the
    # markets that cannot be traded now after those that can.
    views = sorted((service.market_view(m, with_change=True) for m in service.list_markets(active_only=True)),
                   key=lambda v: v.status != "live")
    return render_template("market/index.html", markets=views, market_type=market_type,
                           market_types=sorted((t.value for t in MarketType), key=service.TYPE_ORDER.get),
                           can_trade="binary.trade" in current_app.view_functions,
                           needs_provider=service.needs_provider)


@bp.route("/markets/<symbol>")
def chart(symbol: str):
    market = service.get_market(symbol)
    resolution = request.args.get("resolution", "1m")
    if resolution not in candles.RESOLUTIONS:
        resolution = "1m"
    others = service.list_markets(active_only=True)
    return render_template("market/chart.html", market=market, view=service.market_view(market, with_change=True),
                           resolution=resolution, resolutions=list(candles.RESOLUTIONS), others=others,
                           can_trade="binary.trade" in current_app.view_functions)


# ---- provably fair prices ----------------------------------------------------------------

@bp.app_template_global()
def fairness_link(symbol: str, ts_ms: int | None) -> str | None:
    """The fairness page's period that holds a tick of a simulated market (proof pages)."""
    market = service.market_snapshot(symbol)
    if market is None or not market.is_simulated or ts_ms is None:
        return None
    return url_for("market.fairness_at", symbol=symbol, ts_ms=ts_ms)


@bp.route("/markets/<symbol>/fairness")
def fairness_page(symbol: str):
    market = service.get_market(symbol)
    page = request.args.get("page", "1")
    page = int(page) if page.isdigit() and 0 < int(page) < 100_000 else 1
    now = quotes.now_ms()
    periods, total, current, upcoming = [], 0, None, None
    if market.is_simulated:
        periods, total = fairness.past_periods(market.symbol, now, page, FAIRNESS_PER_PAGE)
        current = fairness.current_period(market.symbol, now)
        upcoming = fairness.next_period(market.symbol, now)
    return render_template("market/fairness.html", market=market, periods=periods, current=current,
                           upcoming=upcoming, page=page, pages=max(1, math.ceil(total / FAIRNESS_PER_PAGE)),
                           highlight=request.args.get("period", type=int))


FAIRNESS_PER_PAGE = 24


@bp.route("/markets/<symbol>/fairness/at/<int:ts_ms>")
def fairness_at(symbol: str, ts_ms: int):
    market = service.get_market(symbol)
    period = fairness.period_containing(market.symbol, ts_ms) if market.is_simulated else None
    if period is None:
        return redirect(url_for("market.fairness_page", symbol=market.symbol))
    newer = fairness.count_past_after(market.symbol, quotes.now_ms(), period.start_ms)
    return redirect(url_for("market.fairness_page", symbol=market.symbol, page=newer // FAIRNESS_PER_PAGE + 1,
                            period=period.start_ms, _anchor=f"period-{period.start_ms}"))


@bp.route("/markets/<symbol>/fairness/<int:start_ms>.json")
def fairness_export(symbol: str, start_ms: int):
    market = service.get_market(symbol)
    data = fairness.export(fairness.get_period(market.symbol, start_ms))
    response = jsonify(data)
    response.headers["Content-Disposition"] = f'attachment; filename="{market.symbol}-{start_ms}.json"'
    return response


@bp.app_template_filter("utc_ms")
def utc_ms(ts_ms: int | None) -> str:
    if ts_ms is None:
        return "—"
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@bp.route("/fairness/verify_prices.py")
def fairness_verifier():
    """The standalone verifier, exactly the file the app itself verifies with."""
    return send_file(fairness.VERIFIER_PATH, mimetype="text/x-python", as_attachment=True,
                     download_name="verify_prices.py")
