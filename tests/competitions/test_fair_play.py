"""fair_play.py: the flags a scan raises (shared device, shared KYC identity, mirrored
trades, profit from stale quotes), the innocent cases it leaves alone, and re-scans that
add nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select, update

from edutradex.admin.services.audit import Actor
from edutradex.auth.models import User
from edutradex.binary.models import Trade
from edutradex.competitions import fair_play, lifecycle, positions, service
from edutradex.competitions.fair_play_models import CompetitionFlag, ParticipantDevice
from edutradex.competitions.models import Competition, Participant
from edutradex.devices import COOKIE_NAME
from edutradex.extensions import db
from edutradex.market import quotes
from edutradex.types import utcnow
from edutradex.wallet.kyc import submit_kyc
from tests.competitions.cfd import at, join, live_account
from tests.competitions.conftest import assert_books_balance, open_competition, participants, trader
from tests.competitions.fair_play_helpers import EURUSD, open_at
from tests.support.quotes import fresh_quotes  # noqa: F401 - autouse: no quote outlives a test
from tests.support.web import csrf_token

D = Decimal


def flags(competition_id: int, kind: str | None = None) -> list[CompetitionFlag]:
    db.session.expire_all()
    query = select(CompetitionFlag).where(CompetitionFlag.competition_id == competition_id)
    if kind:
        query = query.where(CompetitionFlag.kind == kind)
    return list(db.session.scalars(query.order_by(CompetitionFlag.id)))


# ---- mirrored trades --------------------------------------------------------------------

def test_opposite_positions_opened_together_again_and_again_are_flagged_with_the_pairs(db_app):
    with db_app.app_context():
        cid, pa, ua = live_account()
        pb, ub = join(cid)
        t0 = utcnow() - timedelta(minutes=30)
        for n in range(3):
            moment = t0 + timedelta(minutes=n)
            open_at(pa, "BUY", moment)
            open_at(pb, "SELL", moment + timedelta(milliseconds=400))
        assert fair_play.scan(cid) == {"new": 1, "refreshed": 0}
        [flag] = flags(cid)
        assert (flag.kind, flag.user_ids, flag.status) == ("MIRRORED_TRADES", sorted([ua, ub]), "OPEN")
        assert flag.evidence["pairs_count"] == 3 and len(flag.evidence["pairs"]) == 3
        pair = flag.evidence["pairs"][0]
        assert pair["symbol"] == EURUSD and abs(pair["gap_ms"]) == 400
        assert {pair["a"]["side"], pair["b"]["side"]} == {"BUY", "SELL"}
        assert pair["a"]["opened_at"].startswith(t0.strftime("%Y-%m-%dT%H:%M"))


def test_the_window_is_one_second_wherever_the_seconds_fall(db_app):
    """1000 ms apart across a second boundary is "at once"; 1001 ms is not."""
    with db_app.app_context():
        cid, pa, ua = live_account()
        pb, ub = join(cid)
        pc, _ = join(cid)
        pd, _ = join(cid)
        t0 = (utcnow() - timedelta(minutes=30)).replace(microsecond=999_000)
        for n in range(3):
            moment = t0 + timedelta(minutes=n)
            open_at(pa, "BUY", moment)
            open_at(pb, "SELL", moment + timedelta(milliseconds=1000))
            open_at(pc, "BUY", moment + timedelta(seconds=10))
            open_at(pd, "SELL", moment + timedelta(seconds=10, milliseconds=1001))
        fair_play.scan(cid)
        [flag] = flags(cid)
        assert flag.user_ids == sorted([ua, ub]) and {abs(p["gap_ms"]) for p in flag.evidence["pairs"]} == {1000}


def test_an_innocent_pair_is_not_flagged(db_app):
    """Same direction together, opposite but minutes apart, opposite together only once, or
    opposite together on different symbols: nothing."""
    with db_app.app_context():
        cid, pa, _ = live_account()
        pb, _ = join(cid)
        t0 = utcnow() - timedelta(minutes=30)
        for n in range(3):  # same side, same moment
            open_at(pa, "BUY", t0 + timedelta(minutes=n))
            open_at(pb, "BUY", t0 + timedelta(minutes=n, milliseconds=200))
        for n in range(3):  # opposite, two minutes apart
            open_at(pa, "BUY", t0 + timedelta(minutes=10 + n))
            open_at(pb, "SELL", t0 + timedelta(minutes=12 + n, seconds=30))
        open_at(pa, "SELL", t0 + timedelta(minutes=20))  # opposite and together, but once
        open_at(pb, "BUY", t0 + timedelta(minutes=20, milliseconds=300))
        for n in range(2):  # opposite and together, but on different symbols
            open_at(pa, "BUY", t0 + timedelta(minutes=25 + n))
            open_at(pb, "SELL", t0 + timedelta(minutes=25 + n, milliseconds=100), symbol="OTC_GBP_USD",
                    tick=at("1.26000", "1.26010"))
        assert fair_play.scan(cid) == {"new": 0, "refreshed": 0}
        assert flags(cid) == []


def test_mirrored_rise_fall_trades_are_flagged(app):
    with app.app_context():
        cid, pa, ua = live_account(kind="RISE_FALL")
        pb, ub = join(cid)
        t0 = utcnow() - timedelta(minutes=30)

        def trade(participant_id: int, user_id: int, direction: str, moment, n: int) -> None:
            ms = int(moment.timestamp() * 1000)
            db.session.add(Trade(user_id=user_id, participant_id=participant_id, symbol=EURUSD, direction=direction,
                                 stake=D("10.00"), payout_percent=D("80"), potential_payout=D("18.00"),
                                 entry_price=D("1.085"), entry_bid=D("1.085"), entry_ask=D("1.085"), entry_ts_ms=ms,
                                 duration_seconds=60, opened_at=moment, expires_at=moment + timedelta(seconds=60),
                                 expires_ms=ms + 60_000, idempotency_key=f"k-{user_id}-{n}"))

        for n in range(3):
            trade(pa, ua, "UP", t0 + timedelta(minutes=n), n)
            trade(pb, ub, "DOWN", t0 + timedelta(minutes=n, milliseconds=900), n)
        db.session.commit()
        fair_play.scan(cid)
        [flag] = flags(cid)
        assert (flag.kind, flag.user_ids, flag.evidence["pairs_count"], flag.evidence["trade_kind"]) == (
            "MIRRORED_TRADES", sorted([ua, ub]), 3, "RISE_FALL")


# ---- stale quotes -----------------------------------------------------------------------

def stale_tick(bid: str, ask: str, age_seconds: int = 30) -> positions.At:
    return positions.At(7, quotes.now_ms() - age_seconds * 1000, D(bid), D(ask))


def fresh_tick(bid: str, ask: str) -> positions.At:
    return positions.At(8, quotes.now_ms(), D(bid), D(ask))


def round_trip(participant_id: int, open_tick: positions.At, close_tick: positions.At, *,
               close_reason: str = "MANUAL") -> None:
    participant = positions.lock_account(participant_id)
    position = positions.open_position(participant, symbol=EURUSD, side="BUY", lots=D("0.1"), leverage=30,
                                       at=open_tick, rule="market", reason="MARKET", order=None)
    db.session.commit()
    positions.close_position(position.id, at=close_tick, reason=close_reason, rule="close")
    db.session.commit()


def test_profit_mostly_from_stale_quotes_is_flagged_and_a_normal_profit_is_not(db_app):
    with db_app.app_context():
        cid, stale_pid, stale_uid = live_account()
        normal_pid, _ = join(cid)
        little_pid, _ = join(cid)
        # +49.00 opened on a quote 30 s old, +10.00 on fresh quotes: 83 % from stale quotes
        round_trip(stale_pid, stale_tick("1.08500", "1.08510"), fresh_tick("1.09000", "1.09010"))
        round_trip(stale_pid, fresh_tick("1.08500", "1.08510"), fresh_tick("1.08610", "1.08620"))
        # all profit on fresh quotes, the close made by take-profit at its tick
        round_trip(normal_pid, fresh_tick("1.08500", "1.08510"), fresh_tick("1.09000", "1.09010"),
                   close_reason="TAKE_PROFIT")
        # +10.00 closed by hand on a stale quote against +49.00 fresh: 17 %, not flagged
        round_trip(little_pid, fresh_tick("1.08500", "1.08510"), stale_tick("1.08610", "1.08620"))
        round_trip(little_pid, fresh_tick("1.08500", "1.08510"), fresh_tick("1.09000", "1.09010"))
        fair_play.scan(cid)
        [flag] = flags(cid)
        assert (flag.kind, flag.user_ids) == ("STALE_QUOTE_PROFIT", [stale_uid])
        evidence = flag.evidence
        assert (evidence["stale_profit"], evidence["total_profit"], evidence["share_percent"]) == (
            "49.00", "59.00", "83.1")
        [trade] = evidence["trades"]
        assert trade["realized_pnl"] == "49.00" and trade["symbol"] == EURUSD
        assert 30_000 <= trade["open_quote_age_ms"] < 40_000 and trade["close_quote_age_ms"] < 10_000


# ---- devices and identities -------------------------------------------------------------

def test_two_accounts_joining_from_one_browser_are_flagged(app, client, auth):
    with app.app_context():
        cid = open_competition(min_participants=1).id
        make = [trader() for _ in range(3)]
        users = [db.session.get(User, u).email for u in make]

    def join_as(http, email: str) -> None:
        token = csrf_token(http, "/login")
        http.post("/login", data={"csrf_token": token, "email": email, "password": "correct-horse-1"})
        token = csrf_token(http, f"/competitions/{cid}")
        assert http.post(f"/competitions/{cid}/join", data={"csrf_token": token}).status_code == 302
        http.post("/logout", data={"csrf_token": csrf_token(http, "/")})

    join_as(client, users[0])
    device = client.get_cookie(COOKIE_NAME)
    assert device is not None and device.http_only and device.same_site == "Lax" and len(device.value) == 32
    join_as(client, users[1])  # the same browser, another account
    other = app.test_client()
    join_as(other, users[2])  # another browser
    assert other.get_cookie(COOKIE_NAME).value != device.value
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ParticipantDevice)) == 3
        fair_play.scan(cid)
        [flag] = flags(cid)
        assert (flag.kind, flag.user_ids) == ("SHARED_DEVICE", sorted(make[:2]))
        [match] = flag.evidence["matches"]
        assert match["device"] == device.value[:12]
        assert [seen["user_id"] for seen in match["seen"]] == sorted(make[:2])
        assert all(seen["first_seen_at"] for seen in match["seen"])


def test_opening_the_trading_terminal_records_the_device(app, client, auth):
    with app.app_context():
        cid, _, user_id = live_account()
        slug = db.session.get(Competition, cid).slug
        email = db.session.get(User, user_id).email
    auth.login(email=email)
    assert client.get(f"/competitions/{slug}/trade").status_code == 200
    assert client.get(f"/competitions/{slug}/trade").status_code == 200
    with app.app_context():
        [seen] = db.session.scalars(select(ParticipantDevice)).all()
        assert (seen.competition_id, seen.user_id, seen.device_id) == (cid, user_id, client.get_cookie(COOKIE_NAME).value)
        assert seen.last_seen_at > seen.first_seen_at


def test_a_forged_device_cookie_is_replaced(app, client):
    client.set_cookie(COOKIE_NAME, "not-a-device-id")
    client.get("/login")
    assert len(client.get_cookie(COOKIE_NAME).value) == 32


def test_the_device_cookie_is_secure_when_the_session_cookie_is(app, client):
    app.config["SESSION_COOKIE_SECURE"] = True
    response = client.get("/login")
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith(COOKIE_NAME))
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_no_device_cookie_on_a_response_shared_caches_keep(app, client):
    response = client.get("/branding.css")
    assert "public" in response.headers["Cache-Control"]
    assert not [h for h in response.headers.getlist("Set-Cookie") if h.startswith(COOKIE_NAME)]


def kyc(user_id: int, name: str, born: str, id_number: str, country: str = "DE") -> None:
    submit_kyc(user_id, name, born, country, "Hauptstrasse 1, 10115 Berlin", id_number)


def test_accounts_of_one_kyc_identity_in_one_competition_are_flagged(app):
    with app.app_context():
        competition = open_competition(min_participants=1)
        same_doc = [trader(), trader()]
        same_person = [trader(), trader()]
        honest = [trader(), trader()]
        kyc(same_doc[0], "Anna Schmidt", "1990-04-01", "L01X00T47")
        kyc(same_doc[1], "Hans Meier", "1985-02-02", "l01x00t-47")  # the same document, written differently
        kyc(same_person[0], "José O'Neil", "1979-12-24", "C1234567")
        kyc(same_person[1], "jose  oneil", "1979-12-24", "C7654321")  # the same person, another document
        kyc(honest[0], "Maria Rossi", "1990-04-01", "YA1234567", country="IT")
        kyc(honest[1], "Maria Rossi", "1991-04-01", "YA7654321", country="IT")  # a namesake
        outside = trader()
        kyc(outside, "Anna Schmidt", "1990-04-01", "L01X00T47")  # not in the competition
        for user_id in same_doc + same_person + honest:
            service.join_competition(competition.id, user_id)
        fair_play.scan(competition.id)
        found = {tuple(f.user_ids): f for f in flags(competition.id)}
        assert set(found) == {tuple(sorted(same_doc)), tuple(sorted(same_person))}
        assert all(f.kind == "SHARED_IDENTITY" for f in found.values())
        assert [m["match"] for m in found[tuple(sorted(same_doc))].evidence["matches"]] == ["ID document"]
        person = found[tuple(sorted(same_person))].evidence["matches"]
        assert [m["match"] for m in person] == ["name and date of birth"]
        assert [s["kyc_status"] for s in person[0]["seen"]] == ["pending", "pending"]


# ---- re-scans and the clock -------------------------------------------------------------

def test_a_rescan_adds_nothing_refreshes_open_evidence_and_leaves_decided_flags_alone(app):
    with app.app_context():
        cid, pa, ua = live_account()
        pb, ub = join(cid)
        t0 = utcnow() - timedelta(minutes=30)
        for n in range(3):
            open_at(pa, "BUY", t0 + timedelta(minutes=n))
            open_at(pb, "SELL", t0 + timedelta(minutes=n, milliseconds=10))
        fair_play.record_device(cid, ua, "a" * 32)
        fair_play.record_device(cid, ub, "a" * 32)
        assert fair_play.scan(cid) == {"new": 2, "refreshed": 0}
        assert fair_play.scan(cid) == {"new": 0, "refreshed": 0}
        assert len(flags(cid)) == 2
        open_at(pa, "BUY", t0 + timedelta(minutes=5))  # a fourth pair: fresher evidence, same flag
        open_at(pb, "SELL", t0 + timedelta(minutes=5, milliseconds=10))
        assert fair_play.scan(cid) == {"new": 0, "refreshed": 1}
        mirrored = flags(cid, "MIRRORED_TRADES")[0]
        assert mirrored.evidence["pairs_count"] == 4
        admin = trader()
        fair_play.dismiss(cid, mirrored.id, "Two cousins hedging, checked.", actor=Actor(admin, "127.0.0.1"))
        open_at(pa, "SELL", t0 + timedelta(minutes=6))
        open_at(pb, "BUY", t0 + timedelta(minutes=6, milliseconds=10))
        assert fair_play.scan(cid) == {"new": 0, "refreshed": 0}
        mirrored = flags(cid, "MIRRORED_TRADES")[0]
        assert (mirrored.status, mirrored.evidence["pairs_count"]) == ("DISMISSED", 4)
        assert len(flags(cid)) == 2


def test_a_device_shared_by_a_whole_classroom_is_one_flag(db_app):
    with db_app.app_context():
        competition = open_competition(min_participants=1, max_participants=120)
        users = [trader() for _ in range(100)]  # ids up to 3 digits: over 255 characters
        for user_id in users:
            service.join_competition(competition.id, user_id)
            fair_play.record_device(competition.id, user_id, "d" * 32)
        assert fair_play.scan(competition.id) == {"new": 1, "refreshed": 0}
        assert fair_play.scan(competition.id) == {"new": 0, "refreshed": 0}
        [flag] = flags(competition.id)
        assert flag.user_ids == sorted(users) and flag.participants_key.startswith("sha256:")


def shared_device_at_the_end() -> tuple[int, int, int, datetime]:
    """(competition id, user a, user b, end_at): a LIVE competition whose two traders used
    one browser, at its end."""
    cid, _, ua = live_account()
    _, ub = join(cid)
    fair_play.record_device(cid, ua, "b" * 32)
    fair_play.record_device(cid, ub, "b" * 32)
    return cid, ua, ub, db.session.get(Competition, cid).end_at


def status(competition_id: int) -> str:
    db.session.expire_all()
    return db.session.get(Competition, competition_id).status


def test_the_end_scans_the_final_trades_and_holds_the_prizes_while_a_flag_is_open(app):
    with app.app_context():
        cid, ua, ub, end_at = shared_device_at_the_end()
        after = end_at + timedelta(seconds=1)
        assert lifecycle.run_step(cid, "end", after) is None  # ended, but nothing paid
        [flag] = flags(cid)
        assert (flag.kind, flag.status, status(cid)) == ("SHARED_DEVICE", "OPEN", "ENDED")
        assert (cid, "settle") not in lifecycle.due_steps(after)  # the clock does not retry it every second
        assert lifecycle.run_overdue(after + timedelta(hours=1)) == 0 and status(cid) == "ENDED"
        assert lifecycle.settle_competition(cid, after) is None and status(cid) == "ENDED"  # the step itself refuses too

        fair_play.dismiss(cid, flag.id, "Two siblings on the family laptop.", actor=Actor(trader(), "127.0.0.1"))
        assert (cid, "settle") in lifecycle.due_steps(after)
        assert lifecycle.run_overdue(after + timedelta(seconds=2)) == 1
        assert status(cid) == "SETTLED"
        assert [f.status for f in flags(cid)] == ["DISMISSED"]  # the scan before paying kept the decision
        assert_books_balance(app)


def test_a_disqualification_during_the_hold_counts_in_the_prizes(app):
    with app.app_context():
        cid, ua, ub, end_at = shared_device_at_the_end()
        db.session.execute(update(Participant).where(Participant.competition_id == cid, Participant.user_id == ub)
                           .values(cash=D("10500.00"), equity=D("10500.00"), trades_count=1))
        db.session.execute(update(Participant).where(Participant.competition_id == cid, Participant.user_id == ua)
                           .values(trades_count=1))
        db.session.commit()
        after = end_at + timedelta(seconds=1)
        assert lifecycle.run_step(cid, "end", after) is None
        [flag] = flags(cid)
        ranked = {p.user_id: p.final_rank for p in participants(cid)}
        assert ranked == {ub: 1, ua: 2}  # the standings are written at the end
        fair_play.disqualify_from_flag(cid, flag.id, ub, "One person, two accounts.",
                                       actor=Actor(trader(), "127.0.0.1"))
        assert lifecycle.run_overdue(after + timedelta(seconds=2)) == 1 and status(cid) == "SETTLED"
        result = {p.user_id: (p.final_rank, p.disqualified) for p in participants(cid)}
        assert result == {ub: (None, True), ua: (1, False)}  # the leader's account is out; the other moves up
        assert_books_balance(app)


def test_the_prizes_wait_for_a_flag_raised_while_the_competition_was_live(app):
    with app.app_context():
        cid, ua, ub, end_at = shared_device_at_the_end()
        fair_play.scan(cid)  # a periodic scan while LIVE
        assert lifecycle.run_step(cid, "end", end_at + timedelta(seconds=1)) is None
        assert status(cid) == "ENDED" and len(flags(cid)) == 1


def test_a_competition_without_flags_is_paid_at_the_end(app):
    with app.app_context():
        cid, _, _ = live_account()
        join(cid)
        end_at = db.session.get(Competition, cid).end_at
        assert lifecycle.run_step(cid, "end", end_at + timedelta(seconds=1)) is not None
        assert status(cid) == "SETTLED" and flags(cid) == []


def test_the_clock_scans_live_competitions_every_interval(app, monkeypatch):
    with app.app_context():
        cid, _, ua = live_account()
        _, ub = join(cid)
        fair_play.record_device(cid, ua, "c" * 32)
        fair_play.record_device(cid, ub, "c" * 32)
        clock = [1000.0]
        monkeypatch.setattr(fair_play.time, "monotonic", lambda: clock[0])
        assert fair_play.enqueue_live_scans() == 0  # the first sight only sets the next time
        assert flags(cid) == []
        clock[0] += fair_play.SCAN_INTERVAL_SECONDS - 1
        assert fair_play.enqueue_live_scans() == 0
        clock[0] += 1
        assert fair_play.enqueue_live_scans() == 1
        assert [f.kind for f in flags(cid)] == ["SHARED_DEVICE"]
