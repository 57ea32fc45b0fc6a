"""Journal pages (thin: find the account, call the service, render)."""

from __future__ import annotations

from flask import Response, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from ..errors import DomainError
from . import bp, service

PAGE_SIZE = 50


def _page() -> int:
    raw = request.args.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < int(raw) < 100_000 else 1


def _render(account: service.Account, export_url: str):
    trades = service.closed_trades(account)
    stats = service.stats_of(account, trades)
    page = _page()
    shown = trades[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    return render_template("journal/index.html", account=account, stats=stats, trades=shown, page=page,
                           has_next=len(trades) > page * PAGE_SIZE, points=service.equity_points(stats),
                           export_url=export_url, journals=service.competition_journals(account.user_id))


@bp.route("/journal")
@login_required
def index():
    account = service.demo_account(current_user.id)
    return _render(account, url_for("journal.export"))


@bp.route("/journal/competition/<int:competition_id>")
@login_required
def competition(competition_id: int):
    account = service.competition_account(current_user.id, competition_id)
    return _render(account, url_for("journal.competition_export", competition_id=competition_id))


def _back() -> str:
    """Where a plain (no-JS) form goes back to: a journal page of this site, nothing else."""
    back = request.form.get("back", "")
    return back if back.startswith("/journal") and "//" not in back and "\\" not in back else url_for("journal.index")


def _csv(account: service.Account, filename: str) -> Response:
    return Response(service.csv_lines(service.closed_trades(account)), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})


@bp.route("/journal/export.csv")
@login_required
def export():
    return _csv(service.demo_account(current_user.id), "journal-demo.csv")


@bp.route("/journal/competition/<int:competition_id>/export.csv")
@login_required
def competition_export(competition_id: int):
    account = service.competition_account(current_user.id, competition_id)
    return _csv(account, f"journal-competition-{competition_id}.csv")


@bp.route("/journal/notes/<kind>/<int:trade_id>", methods=["POST"])
@login_required
def note(kind: str, trade_id: int):
    htmx = request.headers.get("HX-Request") == "true"
    values = {"note": request.form.get("note", ""), "tags": request.form.get("tags", "")}
    try:
        saved = service.save_note(current_user.id, kind, trade_id, values["note"], values["tags"])
    except DomainError as err:
        if err.status_code == 404:
            raise
        if not htmx:
            flash(err.message, "error")
            return redirect(_back()), 303
        return render_template("journal/_note.html", kind=kind, trade_id=trade_id, note=values["note"],
                               tags=values["tags"], errors=err.field_errors, saved=False), err.status_code
    if not htmx:
        flash("Note saved.", "success")
        return redirect(_back()), 303
    return render_template("journal/_note.html", kind=kind, trade_id=trade_id, note=saved.note,
                           tags=" ".join(saved.tags), errors={}, saved=True)
