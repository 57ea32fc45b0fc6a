"""The journal pages: the owner's figures only, the empty state, notes and tags (bad input
changes nothing), the CSV export, and one query for the trades whatever their number."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, select

from edutradex.extensions import db
from edutradex.journal.models import JournalNote
from tests.competitions.cfd import join, live_account
from tests.factories import PASSWORD, make_user
from tests.support.web import csrf_token

from .conftest import closed_position, settled_trade


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def trader(app, auth):
    with app.app_context():
        user = make_user("owner@example.com")
        other = make_user("other@example.com")
        ids = {
            "mine": [settled_trade(user.id, "OTC_EUR_USD", "8.00", at(5, 9)),
                     settled_trade(user.id, "OTC_GOLD", "-10.00", at(5, 10)),
                     settled_trade(user.id, "OTC_EUR_USD", "8.00", at(5, 11))],
            "open": settled_trade(user.id, "OTC_EUR_USD", "0", at(5, 12), status="OPEN"),
            "theirs": settled_trade(other.id, "OTC_GOLD", "-10.00", at(5, 9)),
            "user_id": user.id, "other_id": other.id,
        }
    auth.login("owner@example.com", PASSWORD)
    return ids


def note_post(client, kind, trade_id, note="", tags="", htmx=True):
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post(f"/journal/notes/{kind}/{trade_id}", headers=headers,
                       data={"csrf_token": csrf_token(client, "/journal"), "note": note, "tags": tags})


def notes(app) -> list[tuple]:
    with app.app_context():
        return [(n.user_id, n.trade_kind, n.trade_id, n.note, n.tags) for n in db.session.scalars(select(JournalNote))]


def test_a_new_trader_sees_the_empty_state(app, auth, client):
    with app.app_context():
        make_user("new@example.com")
    auth.login("new@example.com", PASSWORD)
    html = client.get("/journal").get_data(as_text=True)
    assert 'data-testid="journal-empty"' in html and "No closed trades yet" in html
    assert "journal-chart" not in html and "lightweight-charts" not in html
    assert client.get("/journal/export.csv").get_data(as_text=True).splitlines() == [
        "kind,trade_id,symbol,side,size,entry,exit,opened_at,closed_at,outcome,pnl,note,tags"]


def test_the_page_shows_the_owners_settled_trades_only(client, trader):
    response = client.get("/journal")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'data-testid="j-trades">3<' in html  # the open trade and the other user's are left out
    assert 'data-testid="j-win-rate">66.67%<' in html
    assert html.count('data-testid="j-trade"') == 3
    points = json.loads(html.split("data-points='", 1)[1].split("'", 1)[0])
    # the default demo balance (10,000) one second before the first close, then each close
    assert [p["value"] for p in points] == ["10000", "10008.00", "9998.00", "10006.00"]
    assert points[1]["time"] == int(at(5, 9).timestamp())
    assert "Journal" in html and 'href="/journal"' in html  # in the navigation


def test_anonymous_visitors_are_sent_to_log_in(client):
    assert client.get("/journal").status_code == 302
    assert client.get("/journal/export.csv").status_code == 302


def test_a_note_and_tags_are_saved_normalised_on_the_owners_trade(app, client, trader):
    trade_id = trader["mine"][0]
    response = note_post(client, "RISE_FALL", trade_id, "  Waited for the retest.\r\n", "Breakout, #News  breakout")
    assert response.status_code == 200
    assert "Saved" in response.get_data(as_text=True)
    assert notes(app) == [(trader["user_id"], "RISE_FALL", trade_id, "Waited for the retest.", ["breakout", "news"])]
    note_post(client, "RISE_FALL", trade_id, "Second thought", "news")  # an edit replaces, no second row
    assert notes(app) == [(trader["user_id"], "RISE_FALL", trade_id, "Second thought", ["news"])]
    html = client.get("/journal").get_data(as_text=True)
    assert "Second thought" in html and "#news" in html


def test_without_javascript_the_form_redirects_back_to_the_journal(app, client, trader):
    response = note_post(client, "RISE_FALL", trader["mine"][1], "plain form", "", htmx=False)
    assert response.status_code == 303 and response.headers["Location"].endswith("/journal")
    assert notes(app)[0][3] == "plain form"


@pytest.mark.parametrize("kind, which", [("RISE_FALL", "theirs"), ("RISE_FALL", "open"), ("RISE_FALL", "missing"),
                                         ("CFD", "mine"), ("NOPE", "mine")])
def test_someone_elses_or_an_unknown_trade_is_a_404_and_nothing_is_stored(app, client, trader, kind, which):
    trade_id = {"theirs": trader["theirs"], "open": trader["open"], "missing": 999_999,
                "mine": trader["mine"][0]}[which]
    assert note_post(client, kind, trade_id, "mine now", "x").status_code == 404
    assert notes(app) == []


@pytest.mark.parametrize("note, tags, field, message", [
    ("x" * 2001, "", "note", "at most 2000 characters"),
    ("ok", "a" * 25, "tags", "at most 24 characters"),
    ("ok", "good bad!tag", "tags", "letters, digits"),
    ("ok", "a b c d e f g h i", "tags", "At most 8 tags"),
])
def test_bad_notes_and_tags_are_refused_with_a_message_and_change_nothing(app, client, trader, note, tags, field, message):
    trade_id = trader["mine"][0]
    note_post(client, "RISE_FALL", trade_id, "before", "kept")
    response = note_post(client, "RISE_FALL", trade_id, note, tags)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert f'data-testid="{field}-error"' in html and message in html
    assert notes(app) == [(trader["user_id"], "RISE_FALL", trade_id, "before", ["kept"])]


def test_the_csv_holds_every_closed_trade_with_its_note_and_tags_and_no_formula(app, client, trader):
    note_post(client, "RISE_FALL", trader["mine"][1], "=HYPERLINK(\"http://evil\")", "fomo revenge")
    response = client.get("/journal/export.csv")
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [(r["trade_id"], r["symbol"], r["pnl"]) for r in rows] == [
        (str(trader["mine"][0]), "OTC_EUR_USD", "8.00"), (str(trader["mine"][1]), "OTC_GOLD", "-10.00"),
        (str(trader["mine"][2]), "OTC_EUR_USD", "8.00")]
    assert rows[1]["note"] == "'=HYPERLINK(\"http://evil\")" and rows[1]["tags"] == "fomo revenge"
    assert rows[1]["closed_at"] == "2026-01-05T10:00:00+00:00" and rows[1]["outcome"] == "LOSS"


def test_the_trades_are_read_in_one_query_however_many_there_are(app, client, trader):
    def queries_for_page() -> int:
        statements = []
        with app.app_context():
            listener = lambda *args: statements.append(args[2])  # noqa: E731
            event.listen(db.engine, "before_cursor_execute", listener)
            try:
                assert client.get("/journal").status_code == 200
            finally:
                event.remove(db.engine, "before_cursor_execute", listener)
        return len([s for s in statements if "FROM trades" in s])

    few = queries_for_page()
    with app.app_context():
        for minute in range(30):
            settled_trade(trader["user_id"], "OTC_GOLD", "-10.00" if minute % 2 else "8.00", at(6, 9, minute))
    assert few == queries_for_page() == 1


def test_a_competition_journal_is_for_its_participants_only(app, auth, client):
    with app.app_context():
        competition_id, participant_id, user_id = live_account()
        outsider_participant, outsider_id = join(competition_id)
        from edutradex.auth.models import User

        owner_email = db.session.get(User, user_id).email
        outsider_email = db.session.get(User, outsider_id).email
        stranger = make_user("stranger@example.com")
        mine = [closed_position(competition_id, participant_id, user_id, "OTC_EUR_USD", "120.50", at(5, 9)),
                closed_position(competition_id, participant_id, user_id, "OTC_GOLD", "-20.50", at(5, 13))]
        closed_position(competition_id, participant_id, user_id, "OTC_GOLD", "0", at(5, 14), status="OPEN")
        theirs = closed_position(competition_id, outsider_participant, outsider_id, "OTC_GOLD", "-5.00", at(5, 9))
        settled_trade(user_id, "OTC_GOLD", "8.00", at(5, 9))  # the demo account: a journal of its own
        assert stranger.id not in (user_id, outsider_id)

    auth.login("stranger@example.com", PASSWORD)
    assert client.get(f"/journal/competition/{competition_id}").status_code == 404
    assert client.get(f"/journal/competition/{competition_id}/export.csv").status_code == 404
    assert client.get("/journal/competition/999999").status_code == 404
    auth.logout()

    auth.login(owner_email, PASSWORD)
    html = client.get(f"/journal/competition/{competition_id}").get_data(as_text=True)
    assert 'data-testid="j-trades">2<' in html and 'data-testid="j-net"' in html and "100.00" in html
    assert html.count('data-testid="j-trade"') == 2
    rows = list(csv.DictReader(io.StringIO(client.get(f"/journal/competition/{competition_id}/export.csv")
                                           .get_data(as_text=True))))
    assert [(r["kind"], r["trade_id"], r["pnl"]) for r in rows] == [("CFD", str(mine[0]), "120.50"),
                                                                  ("CFD", str(mine[1]), "-20.50")]
    assert note_post(client, "CFD", mine[1], "cut it", "discipline").status_code == 200
    assert note_post(client, "CFD", theirs, "not mine", "").status_code == 404
    assert [(n[1], n[2], n[4]) for n in notes(app)] == [("CFD", mine[1], ["discipline"])]
    detail = client.get(f"/competitions/{competition_id}").get_data(as_text=True)
    assert f'href="/journal/competition/{competition_id}"' in detail
    demo_page = client.get("/journal").get_data(as_text=True)  # the demo journal lists the competition journals
    assert f'href="/journal/competition/{competition_id}"' in demo_page and 'data-testid="journal-switch"' in demo_page
    auth.logout()
    auth.login(outsider_email, PASSWORD)
    assert 'data-testid="j-trades">1<' in client.get(f"/journal/competition/{competition_id}").get_data(as_text=True)


def test_a_rise_fall_competition_journal_has_its_own_trades_and_the_demo_journal_not(app, auth, client):
    from edutradex.auth.models import User

    with app.app_context():
        competition_id, participant_id, user_id = live_account(kind="RISE_FALL", entry_fee="0")
        email = db.session.get(User, user_id).email
        in_competition = settled_trade(user_id, "VOLATILITY_10", "-10.00", at(5, 9), participant_id=participant_id)
        demo = settled_trade(user_id, "VOLATILITY_10", "8.00", at(5, 10))
    auth.login(email, PASSWORD)
    rows = list(csv.DictReader(io.StringIO(client.get(f"/journal/competition/{competition_id}/export.csv")
                                           .get_data(as_text=True))))
    assert [(r["kind"], r["trade_id"]) for r in rows] == [("RISE_FALL", str(in_competition))]
    demo_rows = list(csv.DictReader(io.StringIO(client.get("/journal/export.csv").get_data(as_text=True))))
    assert [r["trade_id"] for r in demo_rows] == [str(demo)]
    html = client.get(f"/journal/competition/{competition_id}").get_data(as_text=True)
    assert 'data-testid="j-win-rate">0.00%<' in html
