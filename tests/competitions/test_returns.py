"""The return on time-weighted money paid in (Modified Dietz): a rebuy cannot buy a return."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import update

from edutradex.competitions import service
from edutradex.competitions.models import Competition, Participant
from edutradex.competitions.returns import return_percent, top_up_cent_seconds
from edutradex.extensions import db
from tests.competitions.conftest import open_competition, participants, trader

D = Decimal


def test_without_rebuys_the_return_is_on_the_starting_capital():
    assert return_percent(D("12000.00"), D("10000.00")) == D("20.00")
    assert return_percent(D("9876.54"), D("10000.00")) == D("-1.23")


def test_a_top_up_halfway_counts_for_half_the_period():
    # down to 4,000 at half time, rebuy (6,000 paid in), ends at 12,000
    spent = top_up_cent_seconds(D("6000.00"), 1800)
    assert return_percent(D("12000.00"), D("10000.00"), D("6000.00"), spent, 3600) == D("-30.77")  # -4,000 / 13,000


def test_a_rebuy_cannot_buy_a_better_return_than_not_losing():
    honest = return_percent(D("10500.00"), D("10000.00"))
    rebought = return_percent(D("10500.00"), D("10000.00"), D("9000.00"), top_up_cent_seconds(D("9000.00"), 10), 20)
    assert honest == D("5.00") and rebought < 0


def test_a_top_up_at_the_very_start_weighs_in_full_and_one_at_the_end_not_at_all():
    assert return_percent(D("15000.00"), D("10000.00"), D("5000.00"), 0, 100) == D("0.00")
    assert return_percent(D("15000.00"), D("10000.00"), D("5000.00"), top_up_cent_seconds(D("5000.00"), 100),
                          100) == D("0.00")  # P&L 0 either way
    assert return_percent(D("16000.00"), D("10000.00"), D("5000.00"), top_up_cent_seconds(D("5000.00"), 100),
                          100) == D("10.00")  # 1,000 on 10,000: the top-up was never at risk


def test_a_rebuy_records_what_it_paid_in_and_when(app):
    from edutradex.competitions import lifecycle
    from edutradex.types import utcnow

    with app.app_context():
        competition = open_competition(entry_fee="0.00", rebuys_allowed=True, max_rebuys=2, rebuy_fee="0.00")
        user_id = trader("0")
        service.join_competition(competition.id, user_id)
        now = utcnow().replace(microsecond=0)
        db.session.execute(update(Competition).where(Competition.id == competition.id).values(
            registration_opens_at=now - timedelta(hours=3), registration_closes_at=now - timedelta(hours=1),
            start_at=now - timedelta(hours=1), end_at=now + timedelta(hours=1)))
        db.session.commit()
        lifecycle.start_competition(competition.id, now - timedelta(hours=1))
        db.session.execute(update(Participant).where(Participant.competition_id == competition.id)
                           .values(equity=D("4000.00"), cash=D("4000.00")))
        db.session.commit()
        assert service.rebuy(competition.id, user_id, now=now - timedelta(minutes=30)) == 1
        (me,) = participants(competition.id)
        assert me.equity == D("10000.00") and me.topped_up == D("6000.00")
        assert me.topped_up_cent_seconds == 600_000 * 1800
        assert return_percent(D("12000.00"), D("10000.00"), me.topped_up, me.topped_up_cent_seconds, 3600) == D("-30.77")
