"""`flask wallet verify` checks the prize pools: each holds exactly its participants' fees,
and is empty once the competition is settled or cancelled."""

from __future__ import annotations

from sqlalchemy import update

from edutradex.competitions import service
from edutradex.competitions.models import Competition, Participant
from edutradex.extensions import db
from tests.competitions.conftest import assert_books_balance, open_competition, trader


def verify_output(app) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=["wallet", "verify"])
    return result.exit_code, result.output


def test_a_settled_competition_whose_pool_still_holds_credits_is_reported(app):
    with app.app_context():
        competition = open_competition(entry_fee="10.00")
        service.join_competition(competition.id, trader())
        assert_books_balance(app)
        # a settlement that flipped the status but paid nothing (what verify must catch)
        db.session.execute(update(Competition).where(Competition.id == competition.id).values(status="SETTLED"))
        db.session.commit()
        code, output = verify_output(app)
        assert code == 1
        assert f"prize pool of competition {competition.id} (SETTLED) holds 10.00 but should be empty" in output


def test_a_pool_that_does_not_match_the_fees_paid_is_reported(app):
    with app.app_context():
        competition = open_competition(entry_fee="10.00")
        service.join_competition(competition.id, trader())
        db.session.execute(update(Participant).values(fees_paid=5))
        db.session.commit()
        code, output = verify_output(app)
        assert code == 1
        assert "holds 10.00 but should hold the participants' fees 5.00" in output
        assert "prize_pool" in output  # the pools are listed with the other held totals
