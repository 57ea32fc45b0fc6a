"""`flask feed run`: the production price authority (the Procfile's `feed` process).

It starts every registered background service (the price feed, and the settlement clock
that the rise/fall feature registers) and blocks."""

from __future__ import annotations

import signal
import time

import click
from flask import current_app
from flask.cli import AppGroup

from ..extensions import socketio
from ..runtime import start_background_services

feed_cli = AppGroup("feed", help="The price feed process.")


@feed_cli.command("run")
@click.option("--seconds", type=float, default=None, help="Stop after this many seconds (default: run until killed).")
def run_command(seconds):
    """Run the price feed and the other background services until stopped."""
    app = current_app._get_current_object()
    if not app.config["REDIS_URL"]:
        click.echo("warning: REDIS_URL is not set, so web processes cannot see these prices. "
                   "The embedded default runs the feed inside the web process instead.", err=True)
    start_background_services(app)
    click.echo(f"feed: running {len(app.extensions['background_services'])} background service(s)")
    deadline = None if seconds is None else time.monotonic() + seconds
    # A platform restart sends SIGTERM: stop like Ctrl-C, writing the last ticks, so the
    # next holder need not record the stretch since the last batch as lost (a gap).
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        while deadline is None or time.monotonic() < deadline:
            socketio.sleep(0.5)
    except KeyboardInterrupt:
        pass
    feed = app.extensions.get("price_feed")
    if feed is not None:
        feed.stop()
        stopping = time.monotonic() + 5
        while feed.authority is not None and time.monotonic() < stopping:
            socketio.sleep(0.05)  # let the loop write its last batch


def _interrupt(signum, frame):
    raise KeyboardInterrupt


market_cli = AppGroup("market", help="Markets: check the simulated prices.")


def parse_period_time(raw: str) -> int:
    """A UTC time as ISO 8601 ("2026-12-02T05" or "2026-12-02T05:00") or Unix ms."""
    from datetime import UTC, datetime

    if raw.isdigit():
        return int(raw)
    try:
        parsed = datetime.fromisoformat(raw if len(raw) > 13 else raw + ":00")
    except ValueError:
        raise click.BadParameter(f"{raw!r} is neither an ISO time (2026-12-02T05:00) nor Unix milliseconds") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


@market_cli.command("verify")
@click.argument("symbol")
@click.argument("hour")
def verify_command(symbol, hour):
    """Recompute every tick of SYMBOL's revealed period that holds HOUR (UTC, e.g. 2026-12-02T05)."""
    from ..errors import DomainError
    from . import fairness, service

    try:
        market = service.get_market(symbol)
        period = fairness.period_containing(market.symbol, parse_period_time(hour))
        if period is None:
            raise DomainError(f"{market.symbol} has no fairness period at {hour}.")
        status, message = fairness.verify_period(period)
    except DomainError as err:
        raise click.ClickException(err.message) from None
    click.echo(f"{market.symbol} period from {period.start_ms} ms: {message}")
    if status != "VERIFIED":  # as tools/verify_prices.py: 1 a mismatch, 3 ticks that could not be recomputed
        raise SystemExit(1 if status == "FAILED" else 3)


def init_app(app):
    app.cli.add_command(feed_cli)
    app.cli.add_command(market_cli)
