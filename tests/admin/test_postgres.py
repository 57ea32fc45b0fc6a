"""The admin's queries on PostgreSQL: statistics (date grouping, sums of NUMERIC), the
audit log's JSON and filters, the row locks of a role change."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from edutradex.admin.models import AdminAuditEntry
from edutradex.admin.services.audit import Actor, AuditFilters, audit_query, record_audit
from edutradex.admin.services.stats import platform_stats, volume_per_day
from edutradex.admin.services.users import adjust_user_credits, change_role
from edutradex.errors import DomainError
from edutradex.extensions import db
from edutradex.types import utcnow
from edutradex.wallet.ledger import get_or_create_wallet
from edutradex.wallet.models import LedgerEntry
from tests.factories import make_admin, make_user

from .test_stats import add_trade

pytestmark = pytest.mark.postgres


def test_statistics_and_audit_log_on_postgres(pg_app):
    with pg_app.app_context():
        user = make_user("target@example.com").id
        admin = make_admin("boss@example.com").id
        add_trade(user, "10.00", result="WIN", payout="18.00")
        add_trade(user, "20.00", result="LOSS", payout="0.00", days_ago=1)
        add_trade(user, "7.00", status="OPEN", days_ago=1)
        db.session.commit()

        stats = platform_stats()
        assert (stats.trades.total, stats.trades.open, stats.trades.win_rate) == (3, 1, Decimal("50.00"))
        assert stats.trades.house_pnl == Decimal("12.00")
        days = volume_per_day()
        assert [(d["value"], d["trades"]) for d in days[-2:]] == [("27.00", 2), ("10.00", 1)]

        record_audit(Actor(admin, "10.1.2.3"), "user.adjust_credits", "user", user,
                     before={"credit_balance": Decimal("0.00")}, after={"credit_balance": Decimal("5.10")}, note="x")
        db.session.commit()
        today = utcnow().date()
        for filters in (AuditFilters(actor="BOSS@"), AuditFilters(actor=str(admin)),
                        AuditFilters(action="user.adjust_credits", target_type="user", target_id=str(user)),
                        AuditFilters(since=today, until=today)):
            [entry] = db.session.scalars(audit_query(filters)).all()
            assert entry.after == {"credit_balance": "5.10"} and entry.ip == "10.1.2.3"
        assert db.session.scalars(audit_query(AuditFilters(since=today + timedelta(days=1)))).all() == []

        # The last admin stays an admin (the admin rows are locked with FOR UPDATE).
        other = make_admin("other@example.com").id
        change_role(Actor(admin), other, "USER")
        with pytest.raises(DomainError, match="last admin"):
            change_role(Actor(other), admin, "USER")


def test_a_double_submit_racing_itself_credits_once_on_postgres(pg_app):
    """Two requests with the same form key at the same moment: one credits, the other waits
    for it on the wallet's row lock, finds its entry and changes nothing."""
    with pg_app.app_context():
        user = make_user("target@example.com").id
        admin = make_admin("boss@example.com").id
    barrier, outcomes = threading.Barrier(2), []

    def submit():
        with pg_app.app_context():
            barrier.wait()
            outcomes.append(adjust_user_credits(Actor(admin, "10.0.0.1"), user, Decimal("25.00"), "Goodwill",
                                                "b" * 32).repeated)
            db.session.remove()

    for _ in range(10):
        threads = [threading.Thread(target=submit) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(outcomes) == [False] + [True] * 19
    with pg_app.app_context():
        assert get_or_create_wallet(user).balance == Decimal("25.00")
        assert db.session.scalar(select(func.count()).select_from(LedgerEntry)) == 1
        assert db.session.scalar(select(func.count()).select_from(AdminAuditEntry)) == 1
