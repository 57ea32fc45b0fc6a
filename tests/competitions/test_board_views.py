"""The leaderboard pages: the live board with your own row pinned and pages beyond the
first; the freeze (every public endpoint serves the same snapshot, the trader's own equity
stays live, admins see the live board); final standings with prizes; a participant's
public card with their trades as CSV once the competition has ended."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import update

from edutradex.competitions import leaderboard as lb
from edutradex.competitions import lifecycle, standings
from edutradex.competitions.models import CfdFill, CfdPosition, Competition, Participant
from edutradex.extensions import db
from edutradex.types import utcnow
from tests.competitions.board_helpers import live_competition, login
from tests.competitions.conftest import trader
from tests.factories import PASSWORD, make_admin
from tests.support.web import AuthActions

D = Decimal


def board_html(response) -> str:
    assert response.status_code == 200, response.status_code
    html = response.get_data(as_text=True)
    start = html.index('<div id="board"')
    return html[start:html.index("</section>", start)]


def rows(html: str) -> list[int]:
    return [int(pid) for pid in re.findall(r'data-testid="board-row" data-participant="(\d+)"', html)]


def test_the_board_pins_your_row_and_pages_beyond_the_first(app, monkeypatch):
    monkeypatch.setattr(lb, "FRAME_SIZE", 2)
    monkeypatch.setattr(standings, "PER_PAGE", 2)
    client = app.test_client()
    with app.app_context():
        cid, people = live_competition(3)
        (a, user_a), (b, _), (c, _) = people
        lb.note_equity(cid, [(b, D("10300.00"), 1), (c, D("10200.00"), 2), (a, D("9000.00"), 3)])
        lb.publish_boards(app)
    login(client, user_a)
    first = board_html(client.get(f"/competitions/{cid}/leaderboard"))
    assert rows(first) == [b, c]
    assert "Page 1 of 2" in first and "3 ranked · 2 above the starting capital" in first
    pinned = re.search(r'data-testid="my-board-row".*?</div>', first, re.S).group(0)
    assert "data-my-rank>3<" in pinned and "9,000.00" in pinned
    second = board_html(client.get(f"/competitions/{cid}/leaderboard?page=2"))
    assert rows(second) == [a] and "-10.00 %" in second
    fragment = client.get(f"/competitions/{cid}/leaderboard?page=2", headers={"HX-Request": "true"})
    assert rows(fragment.get_data(as_text=True)) == [a]
    assert client.get(f"/competitions/{cid}/leaderboard/counts").get_json() == {
        "id": cid, "view": "live", "participants": 3, "above_start": 2}


def test_during_the_freeze_every_public_endpoint_serves_the_same_snapshot(app, monkeypatch):
    monkeypatch.setattr(lb, "FRAME_SIZE", 2)
    monkeypatch.setattr(standings, "PER_PAGE", 2)
    viewer, trader_client, admin_client = app.test_client(), app.test_client(), app.test_client()
    with app.app_context():
        cid, people = live_competition(3, ends_in=timedelta(minutes=5), freeze_minutes=10)
        (a, user_a), (b, _), (c, _) = people
        lb.note_equity(cid, [(b, D("10300.00"), 1), (c, D("10200.00"), 2), (a, D("10100.00"), 3)])
        lb.publish_boards(app)  # the freeze window has begun: this publish takes the snapshot
        someone = trader("0")
        admin_email = make_admin().email
    login(viewer, someone)
    login(trader_client, user_a)
    AuthActions(admin_client).login(admin_email, PASSWORD)

    endpoints = [f"/competitions/{cid}/leaderboard", f"/competitions/{cid}/leaderboard?page=2",
                 f"/competitions/{cid}/traders/{a}", f"/competitions/{cid}/traders/{b}"]

    def public():
        pages = [viewer.get(url) for url in endpoints]
        seen = [board_html(r) for r in pages[:2]]
        seen += [re.search(r'<section class="grid-3.*?</section>', r.get_data(as_text=True), re.S).group(0)
                 for r in pages[2:]]
        seen.append(viewer.get(f"/competitions/{cid}/leaderboard", headers={"HX-Request": "true"})
                    .get_data(as_text=True))
        seen.append(viewer.get(f"/competitions/{cid}/leaderboard/counts").get_json())
        return seen

    before = public()
    assert "board-frozen" in before[0] and rows(before[0]) == [b, c] and rows(before[1]) == [a]
    with app.app_context():  # a overtakes everyone, c falls below the start, after the freeze began
        lb.note_equity(cid, [(a, D("12000.00"), 10), (c, D("9000.00"), 11)])
        lb.publish_boards(app)
        db.session.execute(update(Participant).where(Participant.id == a).values(  # a trades and rebuys meanwhile
            trades_count=7, topped_up=D("500.00"), topped_up_cent_seconds=50_000 * 60))
        db.session.commit()
    assert public() == before  # board pages, fragment, cards, counts: the snapshot

    mine = board_html(trader_client.get(f"/competitions/{cid}/leaderboard"))
    pinned = re.search(r'data-testid="my-board-row".*?</div>', mine, re.S).group(0)
    assert "12,000.00" in pinned and "data-my-rank>3<" in pinned  # own equity live, rank as the public sees it
    assert rows(mine) == [b, c]

    live = board_html(admin_client.get(f"/competitions/{cid}/leaderboard"))
    assert rows(live) == [a, b] and "board-admin-live" in live
    assert admin_client.get(f"/competitions/{cid}/leaderboard/counts").get_json()["above_start"] == 2


def _trade(cid: int, participant: Participant, pnl: str, minutes: int) -> None:
    at = utcnow() - timedelta(minutes=minutes)
    position = CfdPosition(competition_id=cid, participant_id=participant.id, user_id=participant.user_id,
                           symbol="OTC_EUR_USD", side="BUY", lots=D("0"), opened_lots=D("1.00"),
                           contract_size=D("100000"), quote_currency="USD", leverage=30, margin=D("0.00"),
                           open_price=D("1.10000"), status="CLOSED", realized_pnl=D(pnl), close_price=D("1.10100"),
                           close_reason="MANUAL", opened_at=at, closed_at=at)
    db.session.add(position)
    db.session.flush()
    db.session.add(CfdFill(competition_id=cid, participant_id=participant.id, user_id=participant.user_id,
                           position_id=position.id, symbol="OTC_EUR_USD", action="CLOSE", side="SELL",
                           lots=D("1.00"), price=D("1.10100"), tick_ts_ms=0, bid=D("1.10100"), ask=D("1.10110"),
                           rule="manual close", reason="MANUAL", realized_pnl=D(pnl), created_at=at))


def test_final_standings_with_prizes_and_a_public_card_with_trades_as_csv(app):
    client = app.test_client()
    with app.app_context():
        cid, people = live_competition(2, prize_table={1: "100"}, prize_requires_trade=False)
        (a, user_a), (b, _) = people
    assert client.get(f"/competitions/{cid}/traders/{a}/trades.csv").status_code == 302  # not logged in
    login(client, user_a)
    assert client.get(f"/competitions/{cid}/traders/{a}/trades.csv").status_code == 403  # not public yet
    with app.app_context():
        pa = db.session.get(Participant, a)
        _trade(cid, pa, "500.00", 20)
        _trade(cid, pa, "-200.00", 10)
        db.session.execute(update(Participant).where(Participant.id == a).values(equity=D("10300.00"),
                                                                                 trades_count=2))
        db.session.execute(update(Competition).where(Competition.id == cid).values(end_at=utcnow()))
        db.session.commit()
        assert lifecycle.end_competition(cid, utcnow())
        assert lifecycle.settle_competition(cid) is not None

    assert client.get(f"/competitions/{cid}/leaderboard").headers["Location"].endswith(f"/competitions/{cid}/standings")
    page = client.get(f"/competitions/{cid}/standings").get_data(as_text=True)
    table = re.findall(r'data-testid="standing-row".*?</tr>', page, re.S)
    assert len(table) == 2 and f"/traders/{a}" in table[0] and "10,300.00" in table[0] and "3.00 %" in table[0]
    assert "Prize" in page

    card = client.get(f"/competitions/{cid}/traders/{a}").get_data(as_text=True)
    assert 'data-testid="equity-curve"' in card
    assert re.search(r'data-testid="card-drawdown">1\.90 %', card)  # 10,500 -> 10,300
    assert "50.00 %" in card  # win rate: one of two closes made money
    csv = client.get(f"/competitions/{cid}/traders/{a}/trades.csv")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    lines = csv.get_data(as_text=True).strip().splitlines()
    assert lines[0].startswith("position_id,symbol,side") and len(lines) == 3
    assert lines[1].endswith(",MANUAL,500.00") and lines[2].endswith(",MANUAL,-200.00")
    other = client.get(f"/competitions/{cid}/traders/{b}").get_data(as_text=True)
    assert 'data-testid="no-curve"' in other
    assert client.get(f"/competitions/{cid}/traders/999999").status_code == 404


@pytest.mark.parametrize("path", ["leaderboard", "standings", "leaderboard/counts"])
def test_drafts_have_no_board(app, path):
    from tests.competitions.conftest import terms

    client = app.test_client()
    with app.app_context():
        from edutradex.competitions import service

        draft_id = service.create_competition(terms()).id
        someone = trader("0")
    login(client, someone)
    assert client.get(f"/competitions/{draft_id}/{path}").status_code == 404


def test_no_reader_s_row_reaches_another_and_no_parameter_reaches_the_shared_cache(tmp_path, redis_url, monkeypatch):
    """CTFd served one user's scoreboard view to others (#1584) and let a `top/<count>`
    parameter poison a cache key (#2741). Here the only shared data is the frame per
    competition and view: reading never writes it, whatever the parameters; the page that
    pins a reader's row is private to that reader."""
    from redis import Redis

    from tests.conftest import build_app

    monkeypatch.setattr(lb, "FRAME_SIZE", 2)
    monkeypatch.setattr(standings, "PER_PAGE", 2)
    app = build_app(f"sqlite:///{tmp_path / 'cache.db'}", REDIS_URL=redis_url, JOBS_MODE="thread")
    redis = Redis.from_url(redis_url)
    with app.app_context():
        cid, people = live_competition(3)
        (a, user_a), (b, user_b), (c, _) = people
        lb.note_equity(cid, [(a, D("10300.00"), 1), (b, D("9100.00"), 2), (c, D("10200.00"), 3)])
        lb.publish_boards(app)
    shared = {key: redis.dump(key) for key in redis.scan_iter("edutradex:board:*")}
    reader_a, reader_b = app.test_client(), app.test_client()
    login(reader_a, user_a)
    login(reader_b, user_b)

    for query in ("", "?page=2", "?page=999999999", "?page=-1", "?top=1", "?count=500", "?page=2&top=1"):
        for headers in ({}, {"HX-Request": "true"}):
            seen_a = reader_a.get(f"/competitions/{cid}/leaderboard{query}", headers=headers)
            seen_b = reader_b.get(f"/competitions/{cid}/leaderboard{query}", headers=headers)
            for response, (rank, equity), (_, others) in ((seen_a, ("1", "10,300.00"), ("3", "9,100.00")),
                                                          (seen_b, ("3", "9,100.00"), ("1", "10,300.00"))):
                assert response.status_code == 200 and response.headers["Cache-Control"] == "private, no-store"
                pinned = re.findall(r'data-testid="my-board-row".*?</div>', response.get_data(as_text=True), re.S)
                assert len(pinned) == 1  # one pinned row: the reader's own
                assert f"data-my-rank>{rank}<" in pinned[0] and equity in pinned[0] and others not in pinned[0]
        counts = reader_b.get(f"/competitions/{cid}/leaderboard/counts{query}")
        assert counts.get_json() == {"id": cid, "view": "live", "participants": 3, "above_start": 2}
        assert counts.headers["Cache-Control"] == "private, no-store"
    # Reading wrote nothing shared: the same keys, the same frame, whatever was asked.
    assert {key: redis.dump(key) for key in redis.scan_iter("edutradex:board:*")} == shared
    first = board_html(reader_b.get(f"/competitions/{cid}/leaderboard"))
    assert rows(first) == [a, c] and "Page 1 of 2" in first
