"""Admin: a competition's fair-play page. The flags with their evidence, "Scan now",
dismissing with a note and disqualifying from a flag (both audited), pagination, the empty
state; traders get 403 and a POST without the CSRF token changes nothing."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from edutradex.auth.models import User
from edutradex.competitions import fair_play, lifecycle, positions
from edutradex.competitions.fair_play_models import CompetitionFlag
from edutradex.competitions.models import CfdPosition, Competition, Participant
from edutradex.extensions import db
from edutradex.market import quotes
from edutradex.types import utcnow
from tests.admin.conftest import audit_count, audit_entries
from tests.competitions.cfd import at, live_account
from tests.competitions.fair_play_helpers import EURUSD, mirrored_pairs
from tests.factories import make_user
from tests.support.web import csrf_token


def flagged_competition(app, *, scan: bool = True) -> tuple[int, int, int, int]:
    """(competition id, flag id or 0, user a, user b)."""
    with app.app_context():
        quotes.clear_local_quotes()
        cid, ua, ub = mirrored_pairs()
        if not scan:
            return cid, 0, ua, ub
        fair_play.scan(cid)
        flag_id = db.session.scalar(select(CompetitionFlag.id).where(CompetitionFlag.competition_id == cid))
        return cid, flag_id, ua, ub


def flag(app, flag_id: int) -> CompetitionFlag:
    with app.app_context():
        found = db.session.get(CompetitionFlag, flag_id)
        db.session.expunge(found)
        return found


def participant(app, cid: int, user_id: int) -> Participant:
    with app.app_context():
        found = db.session.scalar(select(Participant).where(Participant.competition_id == cid,
                                                            Participant.user_id == user_id))
        db.session.expunge(found)
        return found


def email(app, user_id: int) -> str:
    with app.app_context():
        return db.session.get(User, user_id).email


def test_the_page_shows_each_flag_with_its_evidence_and_the_detail_page_links_it(app, client, admin):
    cid, flag_id, ua, ub = flagged_competition(app)
    detail = client.get(f"/admin/competitions/{cid}").get_data(as_text=True)
    assert f'href="/admin/competitions/{cid}/fair-play"' in detail and "Fair play (1 open)" in detail
    response = client.get(f"/admin/competitions/{cid}/fair-play")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Mirrored trades" in page and 'data-testid="open-flags">1 open' in page
    assert "3 opposite positions opened within 1000 ms" in page
    for user_id in (ua, ub):
        assert f'href="/admin/users/{user_id}"' in page and email(app, user_id) in page
    assert page.count(EURUSD) == 3 and page.count("400 ms") == 3 and "BUY" in page and "SELL" in page
    assert "Scan now" in page and f"/fair-play/{flag_id}/dismiss" in page and f"/fair-play/{flag_id}/disqualify" in page


def test_the_empty_state_and_scan_now(app, client, admin):
    cid, _, _, _ = flagged_competition(app, scan=False)
    page = client.get(f"/admin/competitions/{cid}/fair-play").get_data(as_text=True)
    assert 'data-testid="no-flags"' in page and "Fair play (0 open)" in client.get(
        f"/admin/competitions/{cid}").get_data(as_text=True)
    response = admin.post(f"/admin/competitions/{cid}/fair-play/scan")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/admin/competitions/{cid}/fair-play")
    page = client.get(f"/admin/competitions/{cid}/fair-play").get_data(as_text=True)
    assert 'data-testid="no-flags"' not in page and "Mirrored trades" in page
    admin.post(f"/admin/competitions/{cid}/fair-play/scan")  # again: still one flag
    assert client.get(f"/admin/competitions/{cid}/fair-play").get_data(as_text=True).count('data-testid="flag"') == 1


def test_dismiss_with_a_note_is_audited_and_needs_the_note(app, client, admin):
    cid, flag_id, _, _ = flagged_competition(app)
    before = audit_count(app)
    refused = admin.post(f"/admin/competitions/{cid}/fair-play/{flag_id}/dismiss", {"note": " "})
    assert refused.status_code == 400 and "Write a note" in refused.get_data(as_text=True)
    assert flag(app, flag_id).status == "OPEN" and audit_count(app) == before
    response = admin.post(f"/admin/competitions/{cid}/fair-play/{flag_id}/dismiss", {"note": "Siblings, hedged."})
    assert response.status_code == 302
    dismissed = flag(app, flag_id)
    assert (dismissed.status, dismissed.note) == ("DISMISSED", "Siblings, hedged.")
    [entry] = audit_entries(app, "competition.fair_play_dismiss")
    assert (entry.target_id, entry.note, entry.before["flag_id"]) == (str(cid), "Siblings, hedged.", flag_id)
    again = admin.post(f"/admin/competitions/{cid}/fair-play/{flag_id}/dismiss", {"note": "Twice?"})
    assert again.status_code == 409
    page = client.get(f"/admin/competitions/{cid}/fair-play").get_data(as_text=True)
    assert "Dismissed" in page and "Siblings, hedged." in page and "0 open" in page


def test_disqualify_from_a_flag_uses_the_audited_disqualification_and_the_flag_records_it(app, client, admin):
    cid, flag_id, ua, ub = flagged_competition(app)
    with app.app_context():
        outsider = make_user().id
    refused = admin.post(f"/admin/competitions/{cid}/fair-play/{flag_id}/disqualify",
                         {"user_id": str(outsider), "reason": "Not in this flag"})
    assert refused.status_code == 400 and flag(app, flag_id).status == "OPEN"
    response = admin.post(f"/admin/competitions/{cid}/fair-play/{flag_id}/disqualify",
                          {"user_id": str(ub), "reason": "Mirrored account"})
    assert response.status_code == 302
    dq = participant(app, cid, ub)
    assert dq.disqualified and dq.disqualify_reason == f"Fair play (flag {flag_id}, mirrored trades): Mirrored account"
    assert not participant(app, cid, ua).disqualified
    [entry] = audit_entries(app, "competition.disqualify")
    assert entry.after == {"user_id": ub, "disqualified": True} and entry.note == dq.disqualify_reason
    acted = flag(app, flag_id)
    assert acted.status == "ACTED" and [(a["action"], a["user_id"]) for a in acted.actions] == [("disqualify", ub)]
    page = client.get(f"/admin/competitions/{cid}/fair-play").get_data(as_text=True)
    assert "Disqualified" in page and "Mirrored account" in page and "disqualified</span>" in page


def test_a_refused_disqualification_leaves_the_flag_open(app, client, admin):
    cid, flag_id, _, ub = flagged_competition(app)
    response = admin.post(f"/admin/competitions/{cid}/fair-play/{flag_id}/disqualify", {"user_id": str(ub), "reason": ""})
    assert response.status_code == 422 and "Give a reason" in response.get_data(as_text=True)
    assert flag(app, flag_id).status == "OPEN" and flag(app, flag_id).actions == []
    assert not participant(app, cid, ub).disqualified and audit_entries(app, "competition.disqualify") == []


def test_many_flags_are_paginated(app, client, admin):
    with app.app_context():
        cid, _, _ = live_account()
        now = utcnow()
        for n in range(30):
            db.session.add(CompetitionFlag(competition_id=cid, kind="SHARED_DEVICE", participants_key=f"{n},{n + 100}",
                                           user_ids=[n, n + 100], evidence={"matches": []}, status="OPEN", actions=[],
                                           created_at=now, updated_at=now))
        db.session.commit()
    first = client.get(f"/admin/competitions/{cid}/fair-play").get_data(as_text=True)
    assert first.count('data-testid="flag"') == 25 and "Page 1 of 2" in first and "30 open" in first
    second = client.get(f"/admin/competitions/{cid}/fair-play?page=2").get_data(as_text=True)
    assert second.count('data-testid="flag"') == 5


def test_traders_get_403(app, client, auth):
    cid, flag_id, _, ub = flagged_competition(app)
    auth.register()
    assert client.get(f"/admin/competitions/{cid}/fair-play").status_code == 403
    token = csrf_token(client, "/")
    for path, data in ((f"/admin/competitions/{cid}/fair-play/scan", {}),
                       (f"/admin/competitions/{cid}/fair-play/{flag_id}/dismiss", {"note": "fine by me"}),
                       (f"/admin/competitions/{cid}/fair-play/{flag_id}/disqualify",
                        {"user_id": str(ub), "reason": "gone"})):
        assert client.post(path, data={"csrf_token": token, **data}).status_code == 403
    assert flag(app, flag_id).status == "OPEN" and not participant(app, cid, ub).disqualified


def test_a_post_without_the_csrf_token_is_refused(app, client, admin):
    cid, flag_id, _, ub = flagged_competition(app)
    assert client.post(f"/admin/competitions/{cid}/fair-play/{flag_id}/dismiss",
                       data={"note": "No token"}).status_code == 400
    assert client.post(f"/admin/competitions/{cid}/fair-play/{flag_id}/disqualify",
                       data={"user_id": str(ub), "reason": "No token"}).status_code == 400
    assert flag(app, flag_id).status == "OPEN" and not participant(app, cid, ub).disqualified


def ended_with_an_open_flag(app) -> tuple[int, int, int, int, datetime]:
    """(competition id, flag id, user a, user b, end_at): the mirrored pair's competition,
    ended by the clock's step, its prizes held by the flag the end's scan raised."""
    cid, _, ua, ub = flagged_competition(app, scan=False)
    with app.app_context():
        for position_id in db.session.scalars(select(CfdPosition.id).where(CfdPosition.competition_id == cid)).all():
            positions.close_position(position_id, at=at("1.08500", "1.08510"), reason="MARKET", rule="by hand")
            db.session.commit()
        end_at = db.session.get(Competition, cid).end_at
        assert lifecycle.run_step(cid, "end", end_at + timedelta(seconds=1)) is None  # the end scans, then holds
        assert db.session.get(Competition, cid).status == "ENDED"
        flag_id = db.session.scalar(select(CompetitionFlag.id).where(CompetitionFlag.competition_id == cid))
    return cid, flag_id, ua, ub, end_at


def competition_status(app, cid: int) -> str:
    with app.app_context():
        return db.session.get(Competition, cid).status


def test_an_ended_competition_holds_the_prizes_until_the_last_flag_is_decided(app, client, admin):
    cid, flag_id, ua, ub, end_at = ended_with_an_open_flag(app)
    detail = client.get(f"/admin/competitions/{cid}").get_data(as_text=True)
    assert 'data-testid="prizes-held"' in detail and "1 fair-play flag is open" in detail
    review = client.get(f"/admin/competitions/{cid}/fair-play").get_data(as_text=True)
    assert "The prizes are held until every open flag is decided." in review
    assert f"/fair-play/{flag_id}/disqualify" in review  # still possible: nothing is paid
    public = client.get(f"/competitions/{cid}").get_data(as_text=True)
    assert "The prizes are on hold while the organisers finish a fair-play review" in public

    response = admin.post(f"/admin/competitions/{cid}/fair-play/{flag_id}/disqualify",
                          {"user_id": str(ub), "reason": "Mirrored account"})
    assert response.status_code == 302
    after = client.get(f"/admin/competitions/{cid}/fair-play").get_data(as_text=True)
    assert "No flag is open any more: the prizes are paid within seconds." in after
    assert 'data-testid="prizes-held"' not in after
    with app.app_context():
        assert lifecycle.run_overdue(end_at + timedelta(seconds=2)) == 1
    assert competition_status(app, cid) == "SETTLED"
    assert participant(app, cid, ub).disqualified and participant(app, cid, ub).final_rank is None
    assert participant(app, cid, ua).final_rank == 1


def test_a_decision_that_leaves_flags_open_says_the_prizes_stay_held(app, client, admin):
    cid, flag_id, ua, ub, _ = ended_with_an_open_flag(app)
    with app.app_context():
        fair_play.record_device(cid, ua, "e" * 32)
        fair_play.record_device(cid, ub, "e" * 32)
        fair_play.scan(cid)
    assert admin.post(f"/admin/competitions/{cid}/fair-play/{flag_id}/dismiss", {"note": "Cousins, checked"}
                      ).status_code == 302
    page = client.get(f"/admin/competitions/{cid}/fair-play").get_data(as_text=True)
    assert "The prizes stay on hold: 1 flag is still open." in page
    assert competition_status(app, cid) == "ENDED"


def test_after_the_prizes_a_flag_can_still_be_dismissed_but_nobody_disqualified(app, client, admin):
    cid, flag_id, ua, ub, end_at = ended_with_an_open_flag(app)
    assert admin.post(f"/admin/competitions/{cid}/fair-play/{flag_id}/dismiss", {"note": "Hedging cousins"}
                      ).status_code == 302
    with app.app_context():
        assert lifecycle.run_overdue(end_at + timedelta(seconds=2)) == 1
        assert db.session.get(Competition, cid).status == "SETTLED"
        fair_play.record_device(cid, ua, "f" * 32)  # a later "Scan now" finds something new
        fair_play.record_device(cid, ub, "f" * 32)
        assert fair_play.scan(cid)["new"] == 1
        late = db.session.scalar(select(CompetitionFlag.id).where(CompetitionFlag.competition_id == cid,
                                                                  CompetitionFlag.status == "OPEN"))
    page = client.get(f"/admin/competitions/{cid}/fair-play").get_data(as_text=True)
    assert "Accounts on one device" in page and "a disqualification is no longer possible" in page
    assert f"/fair-play/{late}/dismiss" in page and f"/fair-play/{late}/disqualify" not in page
    refused = admin.post(f"/admin/competitions/{cid}/fair-play/{late}/disqualify",
                         {"user_id": str(ub), "reason": "Too late"})
    assert refused.status_code == 409 and flag(app, late).status == "OPEN"
    assert admin.post(f"/admin/competitions/{cid}/fair-play/{late}/dismiss", {"note": "Seen after the end"}
                      ).status_code == 302
