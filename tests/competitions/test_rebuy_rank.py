"""With rebuys the live board and the final standings rank by the time-weighted return on
the money paid in (returns.ranking_cents), so a rebuy cannot buy a rank: a trader who
rebought and ends with more equity but a lower return ranks below one who did not."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import update

from edutradex.competitions import leaderboard as lb
from edutradex.competitions import lifecycle, service, standings
from edutradex.competitions.models import Competition, Participant
from edutradex.competitions.returns import ranking_cents, return_percent, top_up_cent_seconds
from edutradex.extensions import db
from edutradex.types import utcnow
from tests.competitions.board_helpers import live_competition, login
from tests.competitions.conftest import open_competition, participants, trader
from tests.competitions.test_board_views import board_html, rows
from tests.conftest import build_app

D = Decimal
C = 1_000_000  # 10,000.00 USD in cents


def test_without_a_top_up_the_score_is_the_equity():
    for equity in (0, 1, 999_999, 1_000_000, 1_234_567, -5):
        for elapsed in (0, 1, 3600):
            assert ranking_cents(equity, C, 0, 0, elapsed) == equity


def test_the_golden_case_half_time_rebuy():
    # down to 4,000 at half time, rebuy of 6,000, ends at 12,000: -4,000 on 13,000 = -30.77 %
    spent = top_up_cent_seconds(D("6000.00"), 1800)
    score = ranking_cents(1_200_000, C, 600_000, spent, 3600)
    assert score == C + (C * -400_000) // 1_300_000 == 692_307  # 10,000 x (1 - 0.3077), floored
    assert score < ranking_cents(1_050_000, C)  # below a trader who made +5 % without a rebuy
    assert ranking_cents(1_200_000, C, 600_000, 0, 0) == C + (C * -400_000) // 1_600_000  # T = 0: paid in whole


@given(equity=st.integers(0, 5_000_000), topped=st.integers(1, 3_000_000), elapsed=st.integers(1, 10 ** 6),
       paid_at=st.floats(0, 1))
def test_the_score_is_the_starting_capital_times_one_plus_the_return_of_returns_py(equity, topped, elapsed, paid_at):
    """One measure: C x (1 + P&L / time-weighted capital), floored to a cent, with the
    capital exactly as return_percent computes it."""
    cent_seconds = topped * int(elapsed * paid_at)
    capital = Fraction(C) + Fraction(topped * elapsed - cent_seconds, elapsed)
    exact = C * (1 + Fraction(equity - C - topped) / capital)
    assert ranking_cents(equity, C, topped, cent_seconds, elapsed) == exact.__floor__()
    # and its order agrees with the return in percent the pages show
    shown = return_percent(D(equity).scaleb(-2), D("10000.00"), D(topped).scaleb(-2), cent_seconds, elapsed)
    assert abs(shown - D(float(exact / C - 1) * 100)) <= D("0.01")


def _rebuy_at(cid: int, user_id: int, pid: int, at) -> None:
    """The trader is down to 4,000 and rebuys (6,000 paid in) at ``at``."""
    db.session.execute(update(Participant).where(Participant.id == pid).values(equity=D("4000.00"), cash=D("4000.00")))
    db.session.commit()
    assert service.rebuy(cid, user_id, now=at) == 1


def _three_traders(app, now, **overrides):
    """Started an hour before ``now``. a: 10,000 -> 11,000 (+10 %); b: down to 4,000 at half time,
    rebuys, ends at 12,000 (-30.77 %, the most equity); c: 10,000 -> 9,500 (-5 %)."""
    cid, people = live_competition(3, rebuys_allowed=True, max_rebuys=1, rebuy_fee="0.00", **overrides)
    (a, _), (b, user_b), (c, _) = people
    start = now - timedelta(hours=1)
    db.session.execute(update(Competition).where(Competition.id == cid).values(start_at=start, started_at=start))
    db.session.commit()
    _rebuy_at(cid, user_b, b, start + timedelta(minutes=30))
    at = lb.ms(now)
    lb.note_equity(cid, [(a, D("11000.00"), at), (b, D("12000.00"), at), (c, D("9500.00"), at)])
    return cid, a, b, c


def test_a_rebuy_cannot_buy_a_rank_on_the_live_board(tmp_path, redis_url):
    from redis import Redis

    app = build_app(f"sqlite:///{tmp_path / 'rebuy.db'}", REDIS_URL=redis_url, JOBS_MODE="thread")
    now = utcnow().replace(microsecond=0)
    with app.app_context():
        cid, a, b, c = _three_traders(app, now)
        lb.publish_boards(app, now)
        before = lb.top(cid, 0, 100)
        assert [e.participant_id for e in before] == [a, c, b]  # b has the most equity, the worst return
        assert lb.rank_of(cid, b)[0] == 3
        rows = {r["participant_id"]: r for r in lb.frame(cid)["rows"]}
        assert [r["participant_id"] for r in lb.frame(cid)["rows"]] == [a, c, b]
        assert rows[b]["equity"] == "12000.00" and rows[b]["return_percent"] == "-30.77"  # the equity, not the score
        assert rows[a]["equity"] == "11000.00" and rows[a]["return_percent"] == "10.00"
        assert lb.counts(cid, D("10000.00")) == lb.Counts(3, 1)  # one positive return

        # a Redis flush mid-contest: the next publish writes the same board
        Redis.from_url(redis_url).flushall()
        lb.publish_boards(app, now)
        assert lb.top(cid, 0, 100) == before
        # the authority restarting: the board rebuilt from the database scores the same
        app.extensions.pop("leaderboard_publisher")
        Redis.from_url(redis_url).flushall()
        lb.publish_boards(app, now)
        assert lb.top(cid, 0, 100) == before
        lb.rebuild(cid, now)
        assert lb.top(cid, 0, 100) == before
        assert [r["participant_id"] for r in lb.frame(cid)["rows"]] == [a, c, b]


@pytest.mark.parametrize("frozen", [False, True])
def test_the_board_pages_show_the_equity_and_say_what_ranks(app, monkeypatch, frozen):
    """Page 1 is the frame, page 2 is read from the board (scores): both show equities and
    returns, the pinned row too; the pages say the board ranks by return."""
    monkeypatch.setattr(lb, "FRAME_SIZE", 2)
    monkeypatch.setattr(standings, "PER_PAGE", 2)
    client = app.test_client()
    now = utcnow().replace(microsecond=0)
    with app.app_context():
        overrides = {"ends_in": timedelta(minutes=5), "freeze_minutes": 10} if frozen else {}
        cid, a, b, c = _three_traders(app, now, **overrides)
        lb.publish_boards(app, now)  # with the freeze: this publish takes the snapshot
        assert (db.session.get(Competition, cid).frozen_at is not None) is frozen
        user_b = db.session.get(Participant, b).user_id
    login(client, user_b)
    first = board_html(client.get(f"/competitions/{cid}/leaderboard"))
    assert rows(first) == [a, c]
    assert "Ranked by return on money paid in, time-weighted: a rebuy cannot buy a rank." in first
    assert "3 ranked · 1 with a positive return" in first
    assert "11,000.00" in first and "10.00 %" in first and "9,500.00" in first
    pinned = re.search(r'data-testid="my-board-row".*?</div>', first, re.S).group(0)
    assert "data-my-rank>3<" in pinned and "12,000.00" in pinned and "-30.77" in pinned
    second = board_html(client.get(f"/competitions/{cid}/leaderboard?page=2"))
    assert rows(second) == [b] and "12,000.00" in second and "-30.77 %" in second
    card = client.get(f"/competitions/{cid}/traders/{b}").get_data(as_text=True)
    assert "12,000.00" in card
    detail = client.get(f"/competitions/{cid}").get_data(as_text=True)
    assert "Ranked by return on money paid in, time-weighted: a rebuy cannot buy a rank" in detail


def test_the_rebuyers_score_moves_with_time_at_a_constant_equity(db_app):
    """The top-up weighs more as the period grows: b's score is taken again at each publish."""
    now = utcnow().replace(microsecond=0)
    with db_app.app_context():
        cid, a, b, c = _three_traders(db_app, now)
        lb.publish_boards(db_app, now)
        first = lb.rank_of(cid, b)[1].cents
        lb.publish_boards(db_app, now + timedelta(minutes=10))
        later = lb.rank_of(cid, b)[1].cents
        competition = db.session.get(Competition, cid)
        row = db.session.get(Participant, b)
        for score, at in ((first, now), (later, now + timedelta(minutes=10))):
            assert score == ranking_cents(1_200_000, C, 600_000, row.topped_up_cent_seconds,
                                          lb.elapsed_seconds(competition, at))
        assert later > first  # -4,000 on a larger time-weighted capital
        assert lb.rank_of(cid, a)[1].cents == 1_100_000  # no top-up: the equity
        assert lb.frame(cid)["rows"][2]["equity"] == "12000.00"


def test_without_rebuys_the_board_ranks_by_equity(db_app):
    now = utcnow().replace(microsecond=0)
    with db_app.app_context():
        cid, people = live_competition(2, rebuys_allowed=False)
        (a, _), (b, _) = people
        lb.note_equity(cid, [(a, D("11000.00"), lb.ms(now)), (b, D("12000.00"), lb.ms(now))])
        lb.publish_boards(db_app, now)
        assert [(e.participant_id, e.cents) for e in lb.top(cid, 0, 10)] == [(b, 1_200_000), (a, 1_100_000)]


def test_a_rebuy_cannot_buy_a_rank_or_a_prize_in_the_final_standings(db_app):
    with db_app.app_context():
        competition = open_competition(entry_fee="10.00", platform_fee_percent="0", rebuys_allowed=True,
                                       max_rebuys=1, rebuy_fee="0.00", prize_table={1: "50", 2: "30", 3: "20"})
        users = [trader() for _ in range(4)]
        for user in users:
            service.join_competition(competition.id, user)
        now = utcnow().replace(microsecond=0)
        start, end = now - timedelta(hours=1), now + timedelta(hours=1)
        db.session.execute(update(Competition).where(Competition.id == competition.id).values(
            registration_opens_at=start - timedelta(hours=2), registration_closes_at=start, start_at=start,
            end_at=end))
        db.session.commit()
        assert lifecycle.start_competition(competition.id, start) == "LIVE"
        pids = {p.user_id: p.id for p in participants(competition.id)}
        a, b, c, d = users
        # b and d rebuy at half time (6,000 paid in) and end with the most equity
        for user in (b, d):
            _rebuy_at(competition.id, user, pids[user], start + timedelta(hours=1))
        finals = {a: "11000.00", b: "12000.00", c: "9500.00", d: "12000.00"}
        for p in participants(competition.id):
            p.equity = p.cash = D(finals[p.user_id])
            p.trades_count = 1
        db.session.commit()
        db.session.rollback()
        lifecycle.run_overdue(end + timedelta(seconds=1))  # ended, then settled
        db.session.expire_all()
        assert db.session.get(Competition, competition.id).status == "SETTLED"

        got = {p.user_id: (p.final_rank, p.final_equity, p.prize) for p in participants(competition.id)}
        # a +10 %, c -5 %, b and d -4,000 on 10,000 + 6,000 x 1/2: -30.77 % each, an exact tie
        assert got[a] == (1, D("11000.00"), D("20.00"))
        assert got[c] == (2, D("9500.00"), D("12.00"))
        assert got[b] == got[d] == (3, D("12000.00"), D("4.00"))  # rank 3 shared: 20 % of 40 split


def test_without_rebuys_the_final_standings_rank_by_equity(db_app):
    with db_app.app_context():
        competition = open_competition(entry_fee="0.00", rebuys_allowed=False)
        users = [trader("0") for _ in range(2)]
        for user in users:
            service.join_competition(competition.id, user)
        for p, equity in zip(participants(competition.id), ("11000.00", "12000.00"), strict=True):
            p.equity = p.cash = D(equity)
            p.trades_count = 1
        db.session.commit()
        lifecycle.write_standings(competition.id, False)
        db.session.commit()
        assert [p.final_rank for p in participants(competition.id)] == [2, 1]


def test_the_rebuyers_own_frame_carries_the_equity_and_the_rank_by_return(app):
    from edutradex.extensions import socketio

    flask_client = app.test_client()
    now = utcnow().replace(microsecond=0)
    with app.app_context():
        cid, a, b, c = _three_traders(app, now)
        user_b = db.session.get(Participant, b).user_id
    login(flask_client, user_b)
    watcher = socketio.test_client(app, flask_test_client=flask_client)
    assert watcher.emit("competition_watch", {"id": cid}, callback=True)["id"] == cid
    with app.app_context():
        lb.publish_boards(app, now)
    received = watcher.get_received()
    mine = [m["args"][0] for m in received if m["name"] == "leaderboard_me"]
    assert mine == [{"id": cid, "rank": 3, "frozen": False, "of": 3, "equity": "12000.00"}]
    frame = next(m["args"][0] for m in received if m["name"] == "leaderboard")
    assert [(r["participant_id"], r["equity"]) for r in frame["rows"]] == [
        (a, "11000.00"), (c, "9500.00"), (b, "12000.00")]
    with app.app_context():
        lb.publish_boards(app, now + timedelta(seconds=1))  # b's score moved with T; rank and equity did not
    assert [m["name"] for m in watcher.get_received()] == ["leaderboard"]
    watcher.disconnect()


def test_a_rebuy_during_the_freeze_does_not_move_the_frozen_board_even_rebuilt(app):
    """The snapshot keeps the top-ups with the frozen equity: c rebuys during the freeze, the
    frozen board rebuilt from the database (a Redis flush, a restart) scores as the snapshot did."""
    now = utcnow().replace(microsecond=0)
    with app.app_context():
        cid, a, b, c = _three_traders(app, now, ends_in=timedelta(minutes=5), freeze_minutes=10)
        lb.publish_boards(app, now)  # the snapshot
        frozen = lb.top(cid, 0, 100, lb.FROZEN)
        frozen_rows = lb.frame(cid, lb.FROZEN)["rows"]
        assert [e.participant_id for e in frozen] == [a, c, b]
        assert frozen_rows[1]["return_percent"] == "-5.00"
        user_c = db.session.get(Participant, c).user_id
        assert service.rebuy(cid, user_c, now=now + timedelta(seconds=1)) == 1  # 500 paid in at 9,500
        lb.rebuild(cid, now + timedelta(seconds=2))
        assert lb.top(cid, 0, 100, lb.FROZEN) == frozen
        assert [(r["participant_id"], r["equity"], r["return_percent"]) for r in lb.frame(cid, lb.FROZEN)["rows"]] == [
            (r["participant_id"], r["equity"], r["return_percent"]) for r in frozen_rows]


def test_an_inexact_noted_equity_in_a_rebuy_competition_is_left_out_and_the_board_still_publishes(app):
    now = utcnow().replace(microsecond=0)
    with app.app_context():
        cid, a, b, c = _three_traders(app, now)
        lb.publish_boards(app, now)
        lb.note_equity(cid, [(b, D("13000.005"), lb.ms(now))])  # an engine bug: logged, not ranked
        assert lb.publish_boards(app, now + timedelta(seconds=1)) == 1
        rows_ = lb.frame(cid)["rows"]
        assert [(r["participant_id"], r["equity"]) for r in rows_] == [
            (a, "11000.00"), (c, "9500.00"), (b, "12000.00")]  # b keeps the last exact equity
