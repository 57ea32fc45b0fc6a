"""Watchlist forms (thin). With HTMX each answers with the panel; without JavaScript it
redirects to the dashboard with a message."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from ..errors import DomainError
from . import bp, service


def _answer(message: str | None = None, error: DomainError | None = None):
    if request.headers.get("HX-Request") == "true":
        status = error.status_code if error is not None else 200
        return render_template("watchlist/_panel.html", watch_error=error.message if error else None,
                               watch_message=message), status
    if error is not None:
        flash(error.message, "error")
    elif message:
        flash(message, "success")
    return redirect(url_for("core.index") + "#watchlist"), 303


def _run(action, message: str | None = None):
    try:
        action()
    except DomainError as err:
        if err.status_code == 404:
            raise
        return _answer(error=err)
    return _answer(message)


@bp.route("/watchlist")
@login_required
def index():
    return render_template("watchlist/index.html")


@bp.route("/watchlist", methods=["POST"])
@login_required
def add():
    symbol = request.form.get("symbol", "")
    return _run(lambda: service.add_symbol(current_user.id, symbol), "Added to your watchlist.")


@bp.route("/watchlist/<int:entry_id>/remove", methods=["POST"])
@login_required
def remove(entry_id: int):
    return _run(lambda: service.remove_entry(current_user.id, entry_id), "Removed from your watchlist.")


@bp.route("/watchlist/<int:entry_id>/move", methods=["POST"])
@login_required
def move(entry_id: int):
    return _run(lambda: service.move_entry(current_user.id, entry_id, request.form.get("direction", "")))
