"""Admin: competitions. List, create, edit (terms while a draft or before the first
entrant; the description later), clone (a new draft), publish, cancel (refunds everyone), participants and
disqualification, the fair-play flags (fair_play.py). Each action is one service call that writes its audit entry in the
same transaction (competitions.service._audit)."""

from __future__ import annotations

from flask import render_template, request, url_for

from ...competitions import fair_play, lifecycle, pages, rules, service
from ...competitions.models import CompetitionStatus
from ...errors import DomainError
from .. import bp
from ..services import competitions as admin_competitions
from ._common import PER_PAGE, actor, done, page_number


def _form(competition=None, *, error: DomainError | None = None, values=None, status: int = 200):
    return render_template("admin/competition_form.html", c=competition,
                           values=values if values is not None else admin_competitions.form_values(competition),
                           errors=error.field_errors if error else {}, error=error), status


@bp.get("/competitions")
def competitions():
    page = admin_competitions.competitions_page(page_number(), PER_PAGE)
    return render_template("admin/competitions.html", pagination=page,
                           pools=pages.pools([c.id for c in page.items]))


@bp.get("/competitions/new")
def competition_new():
    return _form()


@bp.post("/competitions/new")
def competition_create():
    try:
        created = service.create_competition(admin_competitions.terms_from_form(request.form),
                                             created_by=actor().user_id, actor=actor())
    except DomainError as exc:
        exc = admin_competitions.field_errors(exc)
        return _form(error=exc, values=request.form, status=exc.status_code)
    return done(f"Draft {created.name} created.", url_for("admin.competition_detail", competition_id=created.id))


@bp.get("/competitions/<int:competition_id>")
def competition_detail(competition_id: int):
    competition = service.get_competition(competition_id)
    rows, total = admin_competitions.participants_page(competition_id, page_number(), PER_PAGE)
    return render_template("admin/competition_detail.html", c=competition, pool=service.pool_balance(competition_id),
                           rows=rows, total=total, page=page_number(), per_page=PER_PAGE,
                           next_id=service.next_instance_id(competition_id),
                           open_flags=fair_play.open_flag_count(competition_id), breaches=rules.breaches_of(competition_id),
                           shortfall=lifecycle.guarantee_shortfall(competition_id))


@bp.get("/competitions/<int:competition_id>/edit")
def competition_edit(competition_id: int):
    return _form(service.get_competition(competition_id))


@bp.post("/competitions/<int:competition_id>/edit")
def competition_update(competition_id: int):
    competition = service.get_competition(competition_id)
    try:
        if competition.terms_locked:
            service.update_description(competition_id, request.form.get("description", ""), actor=actor())
        else:
            service.update_competition(competition_id, admin_competitions.terms_from_form(request.form),
                                       actor=actor())
    except DomainError as exc:
        exc = admin_competitions.field_errors(exc)
        values = {**admin_competitions.form_values(competition), **request.form}
        return _form(competition, error=exc, values=values, status=exc.status_code)
    return done(f"{competition.name} saved.", url_for("admin.competition_detail", competition_id=competition_id))


@bp.post("/competitions/<int:competition_id>/publish")
def competition_publish(competition_id: int):
    competition = service.publish_competition(competition_id, actor=actor())
    return done(f"{competition.name} published: registration follows its window.",
                url_for("admin.competition_detail", competition_id=competition_id))


@bp.post("/competitions/<int:competition_id>/clone")
def competition_clone(competition_id: int):
    clone = service.clone_competition(competition_id, created_by=actor().user_id, actor=actor())
    return done(f"Draft {clone.name} created: check its dates, then publish it.",
                url_for("admin.competition_edit", competition_id=clone.id))


@bp.post("/competitions/<int:competition_id>/cancel")
def competition_cancel(competition_id: int):
    refunded = service.cancel_competition(competition_id, request.form.get("reason", ""), actor=actor())
    return done(f"Competition cancelled; {refunded} participant(s) refunded.",
                url_for("admin.competition_detail", competition_id=competition_id))


@bp.post("/competitions/<int:competition_id>/participants/<int:user_id>/disqualify")
def competition_disqualify(competition_id: int, user_id: int):
    service.disqualify(competition_id, user_id, request.form.get("reason", ""), actor=actor())
    return done("Participant disqualified: no prize, fee not refunded.",
                url_for("admin.competition_detail", competition_id=competition_id))


@bp.get("/competitions/<int:competition_id>/fair-play")
def competition_fair_play(competition_id: int):
    competition = service.get_competition(competition_id)
    pagination = fair_play.flags_page(competition_id, page_number(), PER_PAGE)
    return render_template("admin/competition_fair_play.html", c=competition, pagination=pagination,
                           people=fair_play.people(competition_id, pagination.items), labels=fair_play.KIND_LABELS,
                           open_count=fair_play.open_flag_count(competition_id))


@bp.post("/competitions/<int:competition_id>/fair-play/scan")
def competition_fair_play_scan(competition_id: int):
    service.get_competition(competition_id)
    fair_play.enqueue_scan(competition_id)
    return done("Fair-play scan started: new flags appear here when it is done.",
                url_for("admin.competition_fair_play", competition_id=competition_id))


@bp.post("/competitions/<int:competition_id>/fair-play/<int:flag_id>/dismiss")
def competition_flag_dismiss(competition_id: int, flag_id: int):
    fair_play.dismiss(competition_id, flag_id, request.form.get("note", ""), actor=actor())
    return done("Flag dismissed." + _prizes_after_review(competition_id),
                url_for("admin.competition_fair_play", competition_id=competition_id))


@bp.post("/competitions/<int:competition_id>/fair-play/<int:flag_id>/disqualify")
def competition_flag_disqualify(competition_id: int, flag_id: int):
    fair_play.disqualify_from_flag(competition_id, flag_id, request.form.get("user_id"),
                                   request.form.get("reason", ""), actor=actor())
    return done("Participant disqualified: no prize, fee not refunded." + _prizes_after_review(competition_id),
                url_for("admin.competition_fair_play", competition_id=competition_id))


def _prizes_after_review(competition_id: int) -> str:
    """What a decision did to the prizes of an ended competition (they wait for the review)."""
    if service.get_competition(competition_id).status != CompetitionStatus.ENDED.value:
        return ""
    left = fair_play.open_flag_count(competition_id)
    if left:
        return f" The prizes stay on hold: {left} flag{'s are' if left != 1 else ' is'} still open."
    return " No flag is open any more: the prizes are paid within seconds."
