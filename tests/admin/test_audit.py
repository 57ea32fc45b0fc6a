"""The audit log: written by record_audit in the action's transaction; a filterable,
paginated page."""

from datetime import timedelta

import pytest

from edutradex.admin.models import AdminAuditEntry
from edutradex.admin.services.audit import Actor, audited, record_audit
from edutradex.errors import DomainError
from edutradex.extensions import db
from edutradex.types import utcnow
from tests.factories import make_admin

from .conftest import audit_count, audit_entries


def test_record_audit_commits_with_the_action_and_keeps_decimals_exact(app, admin_id):
    from decimal import Decimal

    with app.app_context():
        record_audit(Actor(admin_id, "10.0.0.1"), "test.action", "thing", 7,
                     before={"amount": Decimal("0.10")}, after={"amount": Decimal("0.30"), "when": utcnow()},
                     note="because")
        db.session.rollback()  # the action failed: no entry either
        assert audit_count(app) == 0
        record_audit(Actor(admin_id, "10.0.0.1"), "test.action", "thing", 7,
                     before={"amount": Decimal("0.10")}, after={"amount": Decimal("0.30")})
        db.session.commit()
    [entry] = audit_entries(app)
    assert entry.before == {"amount": "0.10"} and entry.after == {"amount": "0.30"}
    assert (entry.target_id, entry.ip) == ("7", "10.0.0.1")


def test_a_failing_action_leaves_no_entry(app, admin_id):
    def fail():
        raise DomainError("no")

    with app.app_context():
        with pytest.raises(DomainError):
            audited(Actor(admin_id), "test.fail", "thing", 1, before=None, after=None, perform=fail)
    assert audit_count(app) == 0


def seed_entries(app, admin_id):
    with app.app_context():
        other = make_admin("other@example.com").id
        now = utcnow()
        rows = []
        for n in range(30):
            rows.append(AdminAuditEntry(actor_id=admin_id, action="user.deactivate", target_type="user",
                                        target_id=str(n), created_at=now - timedelta(days=n)))
        rows.append(AdminAuditEntry(actor_id=other, action="market.update", target_type="market",
                                    target_id="OTC_GOLD", before={"payout_percent": "80.00"},
                                    after={"payout_percent": "85.00"}, created_at=now - timedelta(days=2)))
        db.session.add_all(rows)
        db.session.commit()
        return other, now


def test_the_log_page_filters_and_paginates(app, client, admin, admin_id):
    other, now = seed_entries(app, admin_id)
    html = client.get("/admin/audit").get_data(as_text=True)
    assert "Page 1 of 2" in html and "31 in all" in html

    html = client.get("/admin/audit?actor=other@").get_data(as_text=True)
    assert "market.update" in html and "OTC_GOLD" in html and "1 in all" in html
    assert "<td class=\"mono\">85.00</td>" in html  # the after value, in the before/after table
    assert "1 in all" in client.get(f"/admin/audit?actor={other}").get_data(as_text=True)
    assert "30 in all" in client.get("/admin/audit?action=user.deactivate").get_data(as_text=True)
    assert "1 in all" in client.get("/admin/audit?target_type=user&target_id=5").get_data(as_text=True)
    assert "1 in all" in client.get("/admin/audit?target_type=market").get_data(as_text=True)

    today = now.date()
    week = client.get(f"/admin/audit?since={today - timedelta(days=6)}&until={today}").get_data(as_text=True)
    assert "8 in all" in week  # days 0..6 of deactivations, and the market change on day 2
    assert "No admin actions match" in client.get("/admin/audit?action=nothing.here").get_data(as_text=True)


def test_a_bad_date_is_a_clear_400(app, client, admin):
    response = client.get("/admin/audit?since=yesterday")
    assert response.status_code == 400
    assert "YYYY-MM-DD" in response.get_data(as_text=True)


def test_actions_from_the_ui_appear_in_the_log(app, client, admin, target_id):
    admin.post(f"/admin/users/{target_id}/deactivate")
    admin.post("/admin/settings/site_name", {"value": "Acme"})
    html = client.get("/admin/audit").get_data(as_text=True)
    assert "user.deactivate" in html and "setting.change" in html and "boss@example.com" in html
