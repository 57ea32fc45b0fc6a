"""The alert engine on recorded ticks: 10,000 alerts on one symbol, a tick that crosses 3
fires exactly those 3, once each, and again after restarts (the replay does not fire twice;
a tick missed while down fires after the restart); the re-arm of "every time" alerts, the
crossing alert's change of side, the strict way back at the level, expiry, a tick from
before the alert, and an alert deleted while in the book."""

from __future__ import annotations

import pathlib
from datetime import timedelta

from sqlalchemy import select, update

from edutradex.alerts.models import AlertEngineState, PriceAlert
from edutradex.extensions import db, socketio
from edutradex.market.service import seed_markets
from edutradex.types import utcnow
from tests.alerts.conftest import EUR, Ticks, alert, bulk_alerts, fires, started
from tests.factories import PASSWORD, make_user


def filler(count: int) -> list[tuple[str, str, str, bool]]:
    """Alerts no tick of these tests reaches: ABOVE from 1.09000 up, BELOW from 1.07900 down."""
    specs = []
    for n in range(count):
        if n % 2:
            specs.append(("ABOVE", f"{1.09 + (n // 2) * 0.00001:.5f}", ">=", n % 3 == 0))
        else:
            specs.append(("BELOW", f"{1.079 - (n // 2) * 0.00001:.5f}", "<=", n % 3 == 0))
    return specs


def outbox(app) -> list[pathlib.Path]:
    return sorted(pathlib.Path(app.config["MAIL_OUTBOX_DIR"]).glob("alert-email-*.eml"))


def test_ten_thousand_alerts_a_tick_crossing_three_fires_exactly_those_once_and_after_restarts(db_app, announced):
    app = db_app
    with app.app_context():
        seed_markets()
        record = Ticks()
        owner, other = make_user(), make_user()
        first = record(EUR, "1.08500")
        every, once, crossing, below = bulk_alerts(owner.id, [
            ("ABOVE", "1.08600", ">=", True),  # every time
            ("ABOVE", "1.08650", ">=", False),
            ("CROSSING", "1.08700", ">=", False),  # set while the price was below
            ("BELOW", "1.08000", "<=", False),
        ], first.id)
        bulk_alerts(other.id, filler(9_996), first.id)
        assert db.session.query(PriceAlert).count() == 10_000

        engine = started(app)
        assert len(engine.book) == 10_000
        up = record(EUR, "1.08700")
        engine([up])
        fired = fires()
        assert sorted(f.alert_id for f in fired) == sorted([every, once, crossing])
        assert {f.tick_id for f in fired} == {up.id}
        assert [m for _, _, m in announced if "rose to 1.08700" in m] and len(announced) == 3
        assert len(outbox(app)) == 3 and all(f.emailed_at is not None for f in fires())
        assert alert(once).status == alert(crossing).status == "FIRED"
        assert (alert(every).status, alert(every).watching, alert(every).fire_count) == ("ACTIVE", "<", 1)
        assert len(engine.book) == 9_998  # the two once-alerts left; every-time waits for its re-arm
        engine([up])  # the same tick again (a feed retry): nothing
        assert len(fires()) == 3

        # a restart replays from the watermark: nothing fires twice
        engine.on_authority(False)
        engine = started(app)
        assert len(fires()) == 3 and len(announced) == 3 and len(outbox(app)) == 3

        # a tick while the engine is down fires at the restart, once; it also re-arms "every time"
        engine.on_authority(False)
        down = record(EUR, "1.07995")
        engine = started(app)
        assert [f.alert_id for f in fires()][3:] == [below] and fires(below)[0].tick_id == down.id
        assert (alert(every).watching, alert(every).fire_count) == (">=", 1)  # re-armed, silently
        assert len(announced) == 4 and len(outbox(app)) == 4
        engine.on_authority(False)
        engine = started(app)
        assert len(fires()) == 4

        # back up through 1.08600: the every-time alert fires a second time
        engine([record(EUR, "1.08610")])
        assert [f.alert_id for f in fires()][4:] == [every] and alert(every).fire_count == 2
        assert len(fires()) == 5 and len(outbox(app)) == 5
        watermark = db.session.scalar(select(AlertEngineState.last_tick_id).where(AlertEngineState.symbol == EUR))
        assert watermark == fires()[-1].tick_id


def test_every_time_fires_again_only_after_going_back_across_and_crossing_fires_at_each_change_of_side(app, record):
    with app.app_context():
        user = make_user()
        start = record(EUR, "1.08500")
        above, crossing, below = bulk_alerts(user.id, [
            ("ABOVE", "1.08600", ">=", True), ("CROSSING", "1.08600", ">=", True), ("BELOW", "1.08400", "<=", True)],
            start.id)
        engine = started(app)
        path = ["1.08600",  # reaches: above and crossing fire
                "1.08700", "1.08600",  # stays at or above: nothing (crossing waits for < 1.08600, strictly)
                "1.08599",  # back below: above re-arms silently, crossing fires (down)
                "1.08600",  # up again: both fire
                "1.08400", "1.08350",  # below fires once, not again while below
                "1.08500", "1.08400"]  # back above 1.08400 then down: below fires again
        rows = [record(EUR, mid) for mid in path]
        engine(rows)
        by_alert = {a: [f.tick_id for f in fires(a)] for a in (above, crossing, below)}
        assert by_alert[above] == [rows[0].id, rows[4].id]
        assert by_alert[crossing] == [rows[0].id, rows[3].id, rows[4].id, rows[5].id]
        assert by_alert[below] == [rows[5].id, rows[8].id]
        crossing_messages = [f.message for f in fires(crossing)]
        assert crossing_messages[1] == "EUR/USD OTC fell to 1.08599: below your alert at 1.08600."


def test_a_strict_way_back_is_not_met_at_the_level_itself(app, record):
    with app.app_context():
        user = make_user()
        start = record(EUR, "1.08500")
        (crossing,) = bulk_alerts(user.id, [("CROSSING", "1.08600", ">=", True)], start.id)
        engine = started(app)
        engine([record(EUR, "1.08600")] + [record(EUR, "1.08600") for _ in range(5)])
        assert len(fires(crossing)) == 1  # sitting on the level is not crossing back
        assert alert(crossing).watching == "<" and crossing in engine.book


def test_expired_deleted_and_older_ticks_never_fire(app, record):
    with app.app_context():
        user = make_user()
        start = record(EUR, "1.08500")
        expiring, deleted, fresh = bulk_alerts(user.id, [
            ("ABOVE", "1.08600", ">=", False), ("ABOVE", "1.08610", ">=", False), ("ABOVE", "1.08620", ">=", False)],
            start.id)
        engine = started(app)
        db.session.execute(update(PriceAlert).where(PriceAlert.id == expiring)
                           .values(expires_at=utcnow() - timedelta(seconds=1), version=PriceAlert.version + 1))
        # deleted in the database without a notice (a lost message): the conditional update refuses it
        db.session.execute(update(PriceAlert).where(PriceAlert.id == deleted)
                           .values(status="DELETED", version=PriceAlert.version + 1))
        db.session.commit()
        # set after the tick below was recorded (its last_tick_id is later): that tick is older
        late = record(EUR, "1.08700")
        db.session.execute(update(PriceAlert).where(PriceAlert.id == fresh).values(last_tick_id=late.id + 1))
        db.session.commit()
        engine.alerts[expiring].expires_ms = 0  # the engine learnt the expiry (as at its reconcile)
        engine.alerts[fresh].after_tick = late.id + 1
        engine([late])
        assert fires() == []
        assert alert(expiring).status == "EXPIRED" and expiring not in engine.book
        assert deleted not in engine.book and alert(deleted).fire_count == 0
        assert fresh in engine.book  # waits for a tick after it was set


def test_the_reconcile_finds_what_no_notice_announced(app, record):
    """Changes made without a notice (a lost Redis message): a new alert, a deleted one and a
    moved level each reach the book at the next reconcile."""
    with app.app_context():
        user_id = make_user().id
        start = record(EUR, "1.08500")
        moved, deleted = bulk_alerts(user_id, [("ABOVE", "1.08600", ">=", False), ("ABOVE", "1.08700", ">=", False)],
                                     start.id)
        engine = started(app)
        engine.reconcile()  # nothing changed: the book stays
        assert {moved, deleted} <= engine.book.keys()
        (new,) = bulk_alerts(user_id, [("BELOW", "1.08400", "<=", False)], start.id)
        db.session.execute(update(PriceAlert).where(PriceAlert.id == deleted)
                           .values(status="DELETED", version=PriceAlert.version + 1))
        db.session.execute(update(PriceAlert).where(PriceAlert.id == moved)
                           .values(level="1.08550", version=PriceAlert.version + 1))
        db.session.commit()
        engine.reconcile()
        assert new in engine.book and deleted not in engine.book
        assert engine.book.get(moved).level == alert(moved).level
        engine([record(EUR, "1.08560")])
        assert [f.alert_id for f in fires()] == [moved]


def test_a_tick_whose_transaction_fails_is_replayed_from_the_store_and_fires_once(app, record, monkeypatch):
    from edutradex.alerts import listener

    with app.app_context():
        user_id = make_user().id
        start = record(EUR, "1.08500")
        first, second = bulk_alerts(user_id, [("ABOVE", "1.08600", ">=", False), ("ABOVE", "1.08610", ">=", False)],
                                    start.id)
        engine = started(app)
        real = listener._write_watermarks
        calls = []

        def failing_once(marks):
            calls.append(marks)
            if len(calls) == 1:
                raise RuntimeError("database went away")
            real(marks)

        monkeypatch.setattr(listener, "_write_watermarks", failing_once)
        up = record(EUR, "1.08650")
        engine([up])  # the tick's one transaction fails: nothing recorded, the engine is behind
        assert fires() == [] and engine.behind and {first, second} <= engine.book.keys()
        engine([])  # the next pass (a heartbeat) replays the tick from the store
        assert sorted(f.alert_id for f in fires()) == [first, second] and not engine.behind
        assert {f.tick_id for f in fires()} == {up.id}
        engine([up])
        assert len(fires()) == 2


def test_an_alert_set_in_a_web_process_reaches_the_feed_process_over_redis(tmp_path, redis_url):
    """Production shape: the web process creates the alert and publishes its notice; the
    feed process's engine (reconcile an hour away) reads it on its next pass."""
    import time

    from edutradex.alerts import service
    from tests.conftest import build_app

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    web = build_app(url, REDIS_URL=redis_url)
    feed = build_app(url, REDIS_URL=redis_url, ALERTS_RECONCILE_SECONDS=3600)
    with feed.app_context():
        seed_markets()
        record = Ticks()
        user_id = make_user().id
        record(EUR, "1.08500")  # the quote goes to Redis: the web process reads it there
        engine = started(feed)
    with web.app_context():
        assert not web.extensions["alert_engine"].active  # the web process runs no engine
        alert_id = service.create_alert(user_id, EUR, "ABOVE", "1.08600").id
    with feed.app_context():
        deadline = time.monotonic() + 5
        while alert_id not in engine.book and time.monotonic() < deadline:
            engine([])
        assert alert_id in engine.book
        engine([record(EUR, "1.08600")])
        assert [f.alert_id for f in fires()] == [alert_id]
        engine.stop()
    for app in (web, feed):
        with app.app_context():
            db.engine.dispose()


def test_ticks_that_passed_before_the_engine_heard_of_a_new_alert_still_fire_it(app, record):
    """The notice comes late (or only the reconcile finds the alert): the recorded ticks the
    engine processed meanwhile are checked against it, in order, once."""
    with app.app_context():
        user_id = make_user().id
        start = record(EUR, "1.08500")
        engine = started(app)
        (crossing,) = bulk_alerts(user_id, [("CROSSING", "1.08600", ">=", True)], start.id)
        gap = [record(EUR, mid) for mid in ("1.08550", "1.08620", "1.08580", "1.08540")]
        engine(gap)  # the engine does not know the alert yet: the price went up through it and back
        assert fires() == []
        engine.notice(crossing)
        engine([])
        assert [f.tick_id for f in fires(crossing)] == [gap[1].id, gap[2].id]  # up, then back down
        assert alert(crossing).watching == ">=" and crossing in engine.book
        engine.notice(crossing)
        engine([])
        engine.reconcile()
        assert len(fires()) == 2
        engine([record(EUR, "1.08600")])
        assert len(fires(crossing)) == 3


def test_the_fire_frame_carries_what_the_notifications_page_shows(app, client, auth, record):
    """alert_fired on the owner's room: the toast's message, the bell's count, and what
    /notifications adds at the top live (its id, time and tick)."""
    with app.app_context():
        user = make_user()
        email, start = user.email, record(EUR, "1.08500")
        (above,) = bulk_alerts(user.id, [("ABOVE", "1.08600", ">=", False)], start.id)
    auth.login(email, PASSWORD)
    sio = socketio.test_client(app, flask_test_client=client)
    sio.get_received()
    with app.app_context():
        engine = started(app)
        crossing = record(EUR, "1.08650")
        engine([crossing])
        [fire] = fires(above)
        expected = {"fire_id": fire.id, "message": fire.message, "unread": 1, "tick_id": crossing.id,
                    "at": fire.created_at.strftime("%Y-%m-%d %H:%M:%S UTC")}
    [frame] = [m["args"][0] for m in sio.get_received() if m["name"] == "alert_fired"]
    assert frame == expected
