"""The journal's reads and writes on both databases (JSON tags, the note join, the money types)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from edutradex.errors import InvalidFields, NotFound
from edutradex.journal import service
from tests.competitions.cfd import live_account
from tests.factories import make_user

from .conftest import closed_position, settled_trade


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_app(request):
    return request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")


def at(hour: int) -> datetime:
    return datetime(2026, 1, 5, hour, tzinfo=UTC)


def test_closed_trades_with_notes_figures_and_csv(db_app):
    with db_app.app_context():
        user = make_user()
        first = settled_trade(user.id, "OTC_GOLD", "8.00", at(9))
        second = settled_trade(user.id, "OTC_GOLD", "-10.00", at(10))
        service.save_note(user.id, "RISE_FALL", second, "Chased it.", "FOMO, late")
        account = service.demo_account(user.id)
        trades = service.closed_trades(account)
        assert [(t.id, t.pnl, t.note, t.tags) for t in trades] == [
            (second, Decimal("-10.00"), "Chased it.", ["fomo", "late"]), (first, Decimal("8.00"), "", [])]
        stats = service.stats_of(account, trades)
        assert stats.final_equity == Decimal("9998.00") and stats.drawdown.amount == Decimal("10.00")
        lines = "".join(service.csv_lines(trades)).splitlines()
        assert lines[2].endswith(",-10.00,Chased it.,fomo late")
        with pytest.raises(InvalidFields):
            service.save_note(user.id, "RISE_FALL", second, "x" * 2001, "")
        with pytest.raises(NotFound):
            service.save_note(make_user().id, "RISE_FALL", second, "mine", "")
        assert service.closed_trades(account)[0].note == "Chased it."


def test_a_cfd_account_reads_its_closed_positions(db_app):
    with db_app.app_context():
        competition_id, participant_id, user_id = live_account()
        pid = closed_position(competition_id, participant_id, user_id, "OTC_EUR_USD", "-12.34", at(9))
        service.save_note(user_id, "CFD", pid, "", "stop-hit")
        account = service.competition_account(user_id, competition_id)
        assert account.starting_equity == Decimal("10000.00")
        [trade] = service.closed_trades(account)
        assert (trade.kind, trade.id, trade.pnl, trade.tags, trade.outcome) == ("CFD", pid, Decimal("-12.34"),
                                                                              ["stop-hit"], "MANUAL")
        with pytest.raises(NotFound):
            service.competition_account(make_user().id, competition_id)
