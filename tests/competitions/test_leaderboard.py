"""The live ranking: exact scores, ties to whoever reached the equity first (never to a
member name), the same answers in process and in a real Redis, the database as the truth
(a flushed Redis is rebuilt identical by the next publish), frames to the room and to
each participant."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from edutradex.competitions import leaderboard as lb
from edutradex.competitions.leaderboard import Entry, MemoryBoards, RedisBoards
from edutradex.competitions.models import Competition, Participant
from edutradex.extensions import db, socketio
from edutradex.types import utcnow
from tests.competitions.board_helpers import live_competition, login
from tests.conftest import build_app

D = Decimal


def test_scores_are_exact_integer_cents():
    assert lb.to_cents(D("10000.00")) == 1_000_000
    assert lb.to_cents(D("-12.30")) == -1230
    with pytest.raises(lb.InexactEquity):
        lb.to_cents(D("1.005"))
    with pytest.raises(lb.InexactEquity):
        lb.to_cents(D(2 ** 53) / 100)


def test_moving_a_few_or_most_entries_gives_the_same_order_as_sorting_afresh():
    import random

    rng = random.Random(7)
    entries = [Entry(pid, rng.randint(0, 50) * 100, rng.randint(0, 5)) for pid in range(1, 41)]
    for moved in (1, 3, 30):  # one by one below 1/8 of the board, a fresh sort above
        ranking = lb.Ranking(entries)
        changes = [Entry(pid, rng.randint(0, 50) * 100, 10) for pid in rng.sample(range(1, 41), moved)]
        ranking.put_many(changes)
        final = {e.participant_id: e for e in entries} | {e.participant_id: e for e in changes}
        expected = sorted(final.values(), key=lambda e: (-e.cents, e.at_ms, e.participant_id))
        assert ranking.entries() == expected
        assert [ranking.rank_of(e.participant_id)[0] for e in expected] == list(range(1, 41))


def test_cents_text_matches_decimal_formatting():
    for cents in (0, 5, -5, 100, -100, 1_234_567, -1_234_567, 2 ** 53 - 1):
        assert lb.cents_text(cents) == f"{Decimal(cents).scaleb(-2):.2f}"


@pytest.fixture(params=["memory", "redis"])
def store(request):
    if request.param == "memory":
        return MemoryBoards()
    from redis import Redis

    return RedisBoards(Redis.from_url(request.getfixturevalue("redis_url")))


def test_equal_equity_ranks_by_who_reached_it_first_not_by_member_name(store):
    # 10 reached 10,100.00 before 9 did: by member name ("10" < "9") or id it would be the other way.
    store.replace(1, lb.LIVE, [Entry(9, 1_010_000, 2_000), Entry(10, 1_010_000, 1_000), Entry(3, 1_020_000, 5_000),
                               Entry(4, 990_000, 0)])
    assert [e.participant_id for e in store.top(1, lb.LIVE, 0, 10)] == [3, 10, 9, 4]
    assert store.rank_of(1, lb.LIVE, 9) == (3, Entry(9, 1_010_000, 2_000))
    assert store.rank_of(1, lb.LIVE, 99) is None
    assert store.counts(1, lb.LIVE, 1_000_000) == lb.Counts(participants=4, above_start=3)
    store.apply(1, lb.LIVE, [Entry(4, 1_030_000, 6_000), Entry(10, 1_000_000, 6_000)])
    assert [(e.participant_id, e.cents) for e in store.top(1, lb.LIVE, 0, 10)] == [
        (4, 1_030_000), (3, 1_020_000), (9, 1_010_000), (10, 1_000_000)]
    assert [e.participant_id for e in store.top(1, lb.LIVE, 1, 2)] == [3, 9]  # offset and limit
    assert store.counts(1, lb.LIVE, 1_000_000).above_start == 3
    assert store.top(2, lb.LIVE, 0, 10) == []  # another competition's board is its own


def test_scores_near_the_exact_limit_come_back_exact(store):
    big = 2 ** 53 - 1
    store.replace(1, lb.LIVE, [Entry(1, big, 0), Entry(2, big - 1, 0), Entry(3, -big, 0)])
    assert [(e.participant_id, e.cents) for e in store.top(1, lb.LIVE, 0, 3)] == [(1, big), (2, big - 1), (3, -big)]


def test_reach_time_is_recorded_only_when_the_equity_changes(db_app):
    app = db_app  # the database write is set-based on PostgreSQL, an executemany on SQLite
    app.config["LEADERBOARD_PERSIST_SECONDS"] = 0
    with app.app_context():
        cid, people = live_competition(3)
        (a, _), (b, _), (c, _) = people
        lb.note_equity(cid, [(a, D("10100.00"), 1_000), (c, D("9000.00"), 1_000)])
        lb.publish_boards(app)
        lb.note_equity(cid, [(a, D("10100.00"), 5_000), (b, D("10100.00"), 3_000)])  # a unchanged: still 1,000
        lb.publish_boards(app)
        assert [e.participant_id for e in lb.top(cid, 0, 10)] == [a, b, c]
        assert lb.rank_of(cid, b)[0] == 2
        db.session.expire_all()
        rows = dict(db.session.execute(select(Participant.id, Participant.equity_at_ms)
                                       .where(Participant.competition_id == cid)).all())
        assert rows[a] == 1_000 and rows[b] == 3_000
        # Away and back within one second: the equity was reached again, at the return.
        lb.note_equity(cid, [(a, D("10050.00"), 6_000), (a, D("10100.00"), 7_000)])
        lb.publish_boards(app)
        assert [e.participant_id for e in lb.top(cid, 0, 2)] == [b, a]


def saved(cid: int) -> dict[int, tuple[Decimal, int | None]]:
    db.session.expire_all()
    return {pid: (equity, at) for pid, equity, at in db.session.execute(
        select(Participant.id, Participant.equity, Participant.equity_at_ms)
        .where(Participant.competition_id == cid))}


def test_the_ranked_equities_reach_the_database_every_few_seconds_and_never_after_the_end(db_app):
    app = db_app
    now = utcnow()
    with app.app_context():
        cid, people = live_competition(2)
        (a, _), (b, _) = people
        lb.publish_boards(app, now)  # the first publish saves (nothing changed yet)
        lb.note_equity(cid, [(a, D("10100.00"), 1_000)])
        lb.publish_boards(app, now + timedelta(seconds=1))
        assert lb.rank_of(cid, a)[0] == 1  # ranked at once
        assert saved(cid)[a] == (D("10000.00"), None)  # saved later
        lb.note_equity(cid, [(b, D("10200.00"), 2_000)])
        lb.publish_boards(app, now + timedelta(seconds=5))
        assert saved(cid)[a] == (D("10100.00"), 1_000) and saved(cid)[b] == (D("10200.00"), 2_000)

        lb.note_equity(cid, [(a, D("10300.00"), 3_000)])
        db.session.execute(update(Participant).where(Participant.id == a).values(equity=D("9000.00")))
        db.session.execute(update(Competition).where(Competition.id == cid).values(status="ENDED"))
        db.session.commit()
        lb.publish_competition(db.session.get(Competition, cid), now + timedelta(seconds=10))
        assert saved(cid)[a][0] == D("9000.00")  # what the end wrote stays


def test_a_save_never_writes_back_an_equity_noted_before_a_rebuy(db_app):
    """The engine noted a's equity, then a rebought (the row reset to the starting capital
    in its transaction); the next save must not put the old equity back over the reset."""
    from edutradex.competitions import service

    app = db_app
    now = utcnow().replace(microsecond=0)
    with app.app_context():
        cid, people = live_competition(2, rebuys_allowed=True, max_rebuys=1, rebuy_fee="0.00")
        (a, user_a), (b, _) = people
        lb.publish_boards(app, now, tracked={a, b})  # saves (nothing noted yet); the engine values a and b
        db.session.execute(update(Participant).where(Participant.id == a).values(equity=D("9000.00")))
        db.session.commit()
        lb.note_equity(cid, [(a, D("9000.00"), lb.ms(now)), (b, D("10100.00"), lb.ms(now))])
        lb.publish_boards(app, now + timedelta(seconds=1), tracked={a, b})  # ranked, not saved yet
        assert saved(cid)[a] == (D("9000.00"), None)
        service.rebuy(cid, user_a, now=now + timedelta(seconds=2))
        lb.publish_boards(app, now + timedelta(seconds=6), tracked={a, b})  # the save is due
        assert saved(cid)[a] == (D("10000.00"), lb.ms(now + timedelta(seconds=2)))  # the reset stands
        assert saved(cid)[b] == (D("10100.00"), lb.ms(now))  # the others are saved
        db.session.expire_all()
        assert db.session.get(Participant, a).rebuys == 1


def test_a_redis_flush_mid_contest_rebuilds_an_identical_board_within_a_second(tmp_path, redis_url):
    from redis import Redis

    app = build_app(f"sqlite:///{tmp_path / 'board.db'}", REDIS_URL=redis_url, JOBS_MODE="thread")
    with app.app_context():
        cid, people = live_competition(6)
        lb.note_equity(cid, [(pid, D("10000.00") + n * 7 % 3, 1_000 + n) for n, (pid, _) in enumerate(people)])
        lb.publish_boards(app)
        before = lb.top(cid, 0, 100)
        ranks = {pid: lb.rank_of(cid, pid) for pid, _ in people}
        counts = lb.counts(cid, D("10000.00"))
        assert len(before) == 6 and len({e.cents for e in before}) == 3  # ties, broken by reach time

        Redis.from_url(redis_url).flushall()
        assert lb.top(cid, 0, 100) == []
        started = time.monotonic()
        lb.publish_boards(app)
        assert time.monotonic() - started < 1.0
        assert lb.top(cid, 0, 100) == before
        assert {pid: lb.rank_of(cid, pid) for pid, _ in people} == ranks
        assert lb.counts(cid, D("10000.00")) == counts
        assert lb.frame(cid)["rows"][0]["participant_id"] == before[0].participant_id

        # The authority restarting (nothing in memory) rebuilds the same board from the database.
        app.extensions.pop("leaderboard_publisher")
        Redis.from_url(redis_url).flushall()
        lb.publish_boards(app)
        assert lb.top(cid, 0, 100) == before


def test_two_web_processes_on_one_redis_serve_the_same_board(tmp_path, redis_url):
    authority = build_app(f"sqlite:///{tmp_path / 'shared.db'}", REDIS_URL=redis_url, JOBS_MODE="thread")
    web = build_app(f"sqlite:///{tmp_path / 'shared.db'}", REDIS_URL=redis_url, JOBS_MODE="thread")
    with authority.app_context():
        cid, people = live_competition(3)
        lb.note_equity(cid, [(people[2][0], D("10500.00"), 10)])
        lb.publish_boards(authority)
        seen_by_authority = lb.top(cid, 0, 10), lb.frame(cid)
    with web.app_context():
        assert (lb.top(cid, 0, 10), lb.frame(cid)) == seen_by_authority
        assert lb.rank_of(cid, people[2][0])[0] == 1
        assert lb.frame_and_rank(cid, people[2][0]) == (lb.frame(cid), lb.rank_of(cid, people[2][0]))
        assert lb.frame_and_rank(cid, 999_999)[1] is None
    # The pages, as each process serves them to the same trader: the same board.
    pages = []
    for process in (authority, web):
        client = process.test_client()
        login(client, people[0][1])
        html = client.get(f"/competitions/{cid}/leaderboard").get_data(as_text=True)
        pages.append((html[html.index('<div id="board"'):html.index("</section>", html.index('<div id="board"'))],
                      client.get(f"/competitions/{cid}/leaderboard/counts").get_json()))
    assert pages[0] == pages[1] and f'data-participant="{people[2][0]}"' in pages[0][0]


def test_one_frame_per_publish_to_the_room_and_each_participant_their_own(app):
    flask_client = app.test_client()
    with app.app_context():
        cid, people = live_competition(2)
        (a, user_a), (b, _) = people
    login(flask_client, user_a)
    watcher = socketio.test_client(app, flask_test_client=flask_client)
    assert watcher.emit("competition_watch", {"id": cid}, callback=True)["id"] == cid
    with app.app_context():
        lb.note_equity(cid, [(b, D("10250.50"), 5), (a, D("9999.99"), 6)])
        lb.publish_boards(app)
    received = watcher.get_received()
    frames = [m["args"][0] for m in received if m["name"] == "leaderboard"]
    mine = [m["args"][0] for m in received if m["name"] == "leaderboard_me"]
    assert len(frames) == 1
    assert [(r["participant_id"], r["equity"], r["rank"]) for r in frames[0]["rows"]] == [
        (b, "10250.50", 1), (a, "9999.99", 2)]
    assert frames[0]["counts"] == {"participants": 2, "above_start": 1}
    assert mine == [{"id": cid, "rank": 2, "frozen": False, "of": 2, "equity": "9999.99"}]
    with app.app_context():
        lb.publish_boards(app)  # nothing moved: the room gets its frame, nobody a personal one
    received = watcher.get_received()
    assert [m["name"] for m in received] == ["leaderboard"]
    watcher.disconnect()


def test_a_disqualified_trader_leaves_the_board_at_the_next_publish(app):
    from edutradex.competitions import service

    with app.app_context():
        cid, people = live_competition(3)
        (a, user_a), (b, _), (c, _) = people
        lb.note_equity(cid, [(a, D("10500.00"), 1), (b, D("10400.00"), 2)])
        lb.publish_boards(app)
        service.disqualify(cid, user_a, "Two accounts of one person.")
        lb.note_equity(cid, [(b, D("10450.00"), 3)])
        lb.publish_boards(app)
        assert [(e.participant_id, e.equity) for e in lb.top(cid, 0, 10)] == [(b, D("10450.00")), (c, D("10000.00"))]
        assert lb.rank_of(cid, a) is None and lb.frame(cid)["counts"]["participants"] == 2


def test_the_frame_shows_each_row_s_last_rank_change(app):
    with app.app_context():
        cid, people = live_competition(3)
        (a, _), (b, _), (c, _) = people
        lb.note_equity(cid, [(a, D("10300.00"), 1), (b, D("10200.00"), 1), (c, D("10100.00"), 1)])
        lb.publish_boards(app)
        lb.note_equity(cid, [(c, D("10400.00"), 2)])  # c from 3rd to 1st
        lb.publish_boards(app)
        assert [(r["participant_id"], r["move"]) for r in lb.frame(cid)["rows"]] == [(c, 2), (a, -1), (b, -1)]
        lb.publish_boards(app)  # nothing moved: the arrows keep the last change
        assert [r["move"] for r in lb.frame(cid)["rows"]] == [2, -1, -1]


def test_many_own_frames_go_out_from_a_background_task_latest_values_only(app, monkeypatch):
    monkeypatch.setattr(lb, "INLINE_MAX", 1)
    flask_client = app.test_client()
    with app.app_context():
        cid, people = live_competition(2)
        (a, user_a), (b, _) = people
    login(flask_client, user_a)
    mine = socketio.test_client(app, flask_test_client=flask_client)
    with app.app_context():
        lb.note_equity(cid, [(a, D("10001.00"), 5), (b, D("10002.00"), 5)])
        lb.publish_boards(app)
        deadline = time.monotonic() + 5
        while cid in lb.publisher(app).sending and time.monotonic() < deadline:
            time.sleep(0.01)
        assert cid not in lb.publisher(app).sending
    own = [m["args"][0] for m in mine.get_received() if m["name"] == "leaderboard_me"]
    assert own == [{"id": cid, "rank": 2, "frozen": False, "of": 2, "equity": "10001.00"}]
    mine.disconnect()


def test_the_freeze_snapshot_is_taken_once_when_the_window_begins(app):
    with app.app_context():
        cid, people = live_competition(2, ends_in=timedelta(minutes=5), freeze_minutes=10)
        (a, _), (b, _) = people
        lb.note_equity(cid, [(a, D("10100.00"), 1)])
        lb.publish_boards(app)
        lb.note_equity(cid, [(b, D("10200.00"), 2)])
        lb.publish_boards(app)
        assert [e.participant_id for e in lb.top(cid, 0, 10, lb.FROZEN)] == [a, b]
        assert [e.participant_id for e in lb.top(cid, 0, 10, lb.LIVE)] == [b, a]
        assert lb.frame(cid, lb.FROZEN)["rows"][0]["equity"] == "10100.00"


def test_the_engine_publish_reads_untracked_accounts_from_the_database_and_keeps_its_own_notes(app):
    """publish_boards(tracked=...) as the CFD engine calls it: an account with nothing open
    (or a rise/fall account) is ranked on the equity its row has; an account the engine
    values is ranked on the engine's note, never on the older figure in its row."""
    with app.app_context():
        cid, people = live_competition(3)
        (a, _), (b, _), (c, _) = people
        lb.publish_boards(app, tracked=set())
        # a: a close (or a settlement) wrote its row; b: the engine values it, its row lags behind
        db.session.execute(update(Participant).where(Participant.id == a).values(equity=D("10400.00")))
        db.session.execute(update(Participant).where(Participant.id == b).values(equity=D("9000.00")))
        db.session.commit()
        lb.note_equity(cid, [(b, D("10500.00"), 1_000)])
        lb.publish_boards(app, tracked={b})
        assert [(e.participant_id, e.equity) for e in lb.top(cid, 0, 3)] == [
            (b, D("10500.00")), (a, D("10400.00")), (c, D("10000.00"))]
        # without tracked (tests, benches) the rows are not read: a's later row change waits for a note
        db.session.execute(update(Participant).where(Participant.id == a).values(equity=D("11000.00")))
        db.session.commit()
        lb.publish_boards(app)
        assert lb.rank_of(cid, a)[1].equity == D("10400.00")
        lb.publish_boards(app, tracked={b})
        rank, entry = lb.rank_of(cid, a)
        assert (rank, entry.equity) == (1, D("11000.00"))


def test_ties_go_to_who_reached_the_equity_first_while_live_and_share_a_rank_at_the_end(app):
    from edutradex.competitions import lifecycle

    app.config["LEADERBOARD_PERSIST_SECONDS"] = 0
    with app.app_context():
        cid, people = live_competition(3, prize_requires_trade=False)
        (a, _), (b, _), (c, _) = people
        lb.note_equity(cid, [(a, D("10200.00"), 2_000), (b, D("10200.00"), 1_000), (c, D("10100.00"), 500)])
        lb.publish_boards(app)
        assert [(e.participant_id, e.at_ms) for e in lb.top(cid, 0, 3)] == [(b, 1_000), (a, 2_000), (c, 500)]
        assert [r["rank"] for r in lb.frame(cid)["rows"]] == [1, 2, 3]  # live: no shared rank
        db.session.execute(update(Competition).where(Competition.id == cid).values(end_at=utcnow()))
        db.session.commit()
        assert lifecycle.end_competition(cid, utcnow())
        db.session.expire_all()
        final = {p.id: (p.final_rank, p.final_equity) for p in db.session.scalars(
            select(Participant).where(Participant.competition_id == cid))}
        assert final == {a: (1, D("10200.00")), b: (1, D("10200.00")), c: (3, D("10100.00"))}


def test_a_large_board_is_written_by_a_background_task_its_frame_after_it(tmp_path, redis_url, monkeypatch):
    """Beyond INLINE_MAX the authority's re-rank does not wait for Redis: the whole board and
    then its frame go out from a background task, the latest board wins."""
    monkeypatch.setattr(lb, "INLINE_MAX", 1)
    app = build_app(f"sqlite:///{tmp_path / 'large.db'}", REDIS_URL=redis_url, JOBS_MODE="thread")
    with app.app_context():
        cid, people = live_competition(3)
        (a, _), (b, _), (c, _) = people
        pub = lb.publisher(app)
        for n, equities in enumerate((("10100.00", "10200.00", "10300.00"), ("10600.00", "10500.00", "10400.00"))):
            lb.note_equity(cid, [(pid, D(value), 10 + n) for (pid, _), value in zip(people, equities, strict=True)])
            lb.publish_boards(app)
        deadline = time.monotonic() + 5
        while (cid in pub.board_writes or cid in pub.sending) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert cid not in pub.board_writes
        assert [(e.participant_id, e.equity) for e in lb.top(cid, 0, 10)] == [
            (a, D("10600.00")), (b, D("10500.00")), (c, D("10400.00"))]
        assert [r["participant_id"] for r in lb.frame(cid)["rows"]] == [a, b, c]
        assert lb.top(cid, 0, 10) == lb.ranking_entries(cid)


def test_during_the_freeze_the_room_gets_no_live_frame_and_each_trader_their_live_equity(app):
    flask_client = app.test_client()
    with app.app_context():
        cid, people = live_competition(2, ends_in=timedelta(minutes=5), freeze_minutes=10)
        (a, user_a), (b, _) = people
        lb.note_equity(cid, [(a, D("10100.00"), 1), (b, D("10200.00"), 2)])
        lb.publish_boards(app)  # the freeze window has begun: the snapshot (b first)
    login(flask_client, user_a)
    watcher = socketio.test_client(app, flask_test_client=flask_client)
    watcher.emit("competition_watch", {"id": cid}, callback=True)
    watcher.get_received()
    with app.app_context():
        lb.note_equity(cid, [(a, D("12000.00"), 3)])  # a overtakes b after the freeze began
        lb.publish_boards(app)
        assert [e.participant_id for e in lb.top(cid, 0, 2, lb.LIVE)] == [a, b]
    received = watcher.get_received()
    assert [m["name"] for m in received] == ["leaderboard_me"]  # nothing live for the public room
    assert received[0]["args"][0] == {"id": cid, "rank": 2, "frozen": True, "of": 2, "equity": "12000.00"}
    with app.app_context():
        assert [r["participant_id"] for r in lb.frame(cid, lb.FROZEN)["rows"]] == [b, a]
    watcher.disconnect()


def test_an_inexact_noted_equity_is_logged_and_left_out_of_the_re_rank(app, caplog):
    with app.app_context():
        cid, people = live_competition(3)
        (a, _), (b, _), (c, _) = people
        lb.note_equity(cid, [(a, D("10100.005"), 1), (b, D(2 ** 53) / 100, 1), (c, D("10050.00"), 1)])
        lb.publish_boards(app)
        assert [(e.participant_id, e.equity) for e in lb.top(cid, 0, 3)] == [
            (c, D("10050.00")), (a, D("10000.00")), (b, D("10000.00"))]  # a and b keep their last exact equity
        assert sum("not exact cents" in r.getMessage() for r in caplog.records) == 2


def test_a_board_left_in_redis_by_the_previous_member_format_is_not_read(tmp_path, redis_url):
    """Deploying the packed member format with boards live: the old keys (members
    "<at>:<id>") are left aside, the next publish writes the new board whole."""
    from redis import Redis

    redis = Redis.from_url(redis_url)
    app = build_app(f"sqlite:///{tmp_path / 'old.db'}", REDIS_URL=redis_url, JOBS_MODE="thread")
    with app.app_context():
        cid, people = live_competition(5)
        ids = [pid for pid, _ in people]
        old = f"edutradex:board:{cid}:live"
        members = {pid: f"{n:015d}:{pid:010d}" for n, pid in enumerate(ids)}
        redis.zadd(f"{old}:rank", {member: -1_000_000 for member in members.values()})
        redis.hset(f"{old}:member", mapping=members)
        redis.set(f"{old}:built", 1)
        lb.note_equity(cid, [(ids[4], D("10100.00"), 5)])  # one of five moved: a partial write
        lb.publish_boards(app)
        assert [(e.participant_id, e.equity) for e in lb.top(cid, 0, 5)] == [(ids[4], D("10100.00"))] + [
            (pid, D("10000.00")) for pid in ids[:4]]
        assert lb.rank_of(cid, ids[0])[0] == 2
        db.session.execute(update(Competition).where(Competition.id == cid).values(status="ENDED"))
        db.session.commit()
        lb.publish_boards(app)  # ended: its boards are dropped, the old ones with them
    assert list(redis.scan_iter(f"edutradex:board:{cid}:*")) == []


def test_a_publish_that_fails_before_its_save_leaves_the_equities_for_the_next_save(app, monkeypatch):
    app.config["LEADERBOARD_PERSIST_SECONDS"] = 0
    with app.app_context():
        cid, people = live_competition(2)
        (a, _), _ = people
        lb.publish_boards(app)
        lb.note_equity(cid, [(a, D("10400.00"), 4_000)])
        build = lb.build_frame
        monkeypatch.setattr(lb, "build_frame", lambda *args, **kwargs: 1 / 0)
        lb.publish_boards(app)  # logged; the frame and the save did not happen
        assert saved(cid)[a] == (D("10000.00"), None)
        monkeypatch.setattr(lb, "build_frame", build)
        lb.publish_boards(app)
        assert saved(cid)[a] == (D("10400.00"), 4_000)


def test_a_save_keeps_an_equity_committed_after_the_publish_read_it(db_app, monkeypatch):
    """a holds nothing the engine values: its board equity is read from its row. A rise/fall
    stake (or a close) committed after that read and before the save keeps its equity."""
    app = db_app
    now = utcnow().replace(microsecond=0)
    with app.app_context():
        cid, people = live_competition(2)
        (a, _), (b, _) = people
        lb.publish_boards(app, now, tracked={b})  # saves (nothing changed yet)
        db.session.execute(update(Participant).where(Participant.id == a).values(equity=D("10400.00")))
        db.session.commit()
        read = lb.refresh_from_database

        def read_then_a_stake_commits(*args):
            read(*args)
            db.session.execute(update(Participant).where(Participant.id == a).values(equity=D("10300.00")))
            db.session.commit()

        monkeypatch.setattr(lb, "refresh_from_database", read_then_a_stake_commits)
        lb.publish_boards(app, now + timedelta(seconds=6), tracked={b})  # ranks 10,400.00, the save is due
        assert lb.rank_of(cid, a)[1].equity == D("10400.00")
        assert saved(cid)[a][0] == D("10300.00")  # the stake's equity stands
        monkeypatch.setattr(lb, "refresh_from_database", read)
        lb.publish_boards(app, now + timedelta(seconds=7), tracked={b})
        assert lb.rank_of(cid, a)[1].equity == D("10300.00")  # and the next publish ranks it


def test_a_save_keeps_the_equity_of_a_close_committed_after_the_engine_valued_the_account(db_app):
    """The engine valued a at version v; a web process then closed a position (the account
    locked: version v + 1, its equity written). The engine's older figure is not saved over it."""
    from edutradex.competitions import positions

    app = db_app
    now = utcnow().replace(microsecond=0)
    with app.app_context():
        cid, people = live_competition(2)
        (a, _), (b, _) = people
        lb.publish_boards(app, now, tracked={a, b})  # saves (nothing noted yet)
        version = {pid: v for pid, v in db.session.execute(
            select(Participant.id, Participant.version).where(Participant.competition_id == cid))}
        lb.note_equity(cid, [(a, D("10500.00"), lb.ms(now)), (b, D("10100.00"), lb.ms(now))], version)
        lb.publish_boards(app, now + timedelta(seconds=1), tracked={a, b})  # ranked, not saved yet
        positions.lock_account(a)  # the close, in a web process
        db.session.execute(update(Participant).where(Participant.id == a).values(equity=D("10200.00")))
        db.session.commit()
        lb.publish_boards(app, now + timedelta(seconds=6), tracked={a, b})  # the save is due
        assert saved(cid)[a][0] == D("10200.00")  # the close's equity stands
        assert saved(cid)[b] == (D("10100.00"), lb.ms(now))  # b, still at the version valued, is saved
