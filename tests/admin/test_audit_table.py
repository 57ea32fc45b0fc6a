"""The audit log shows each entry's change as a before/after table with field labels,
not raw JSON."""

from __future__ import annotations

import re

from edutradex.admin.models import AdminAuditEntry
from edutradex.admin.services.audit import audit_changes
from edutradex.market.service import seed_markets


def rows(html: str) -> list[tuple[str, str, str]]:
    table = html.split('data-testid="audit-diff"')[1].split("</table>")[0]
    return [(f, b.strip(), a.strip()) for f, b, a in re.findall(
        r'<th scope="row">([^<]+)</th>\s*<td class="mono">([^<]*)</td><td class="mono">([^<]*)</td>', table)]


def test_market_change_is_a_labelled_before_after_table(app, client, admin):
    with app.app_context():
        seed_markets()
    admin.post("/admin/markets/OTC_GOLD", {"payout_percent": "90", "active": "no"})
    html = client.get("/admin/audit").get_data(as_text=True)
    assert rows(html) == [("Open for trading", "yes", "no"), ("Payout %", "80.00", "90.00")]
    log = html.split('class="admin-table audit-table"')[1].split("</table>\n</div>")[0]
    assert "{&#34;" not in log and '{"' not in log  # no raw JSON
    assert "payout_percent" not in html.split('data-testid="audit-diff"')[1].split("</table>")[0]


def test_setting_change_uses_the_setting_label(app, client, admin):
    admin.post("/admin/settings/max_open_trades", {"value": "7"})
    html = client.get("/admin/audit").get_data(as_text=True)
    assert rows(html) == [("Maximum open trades per user", "20", "7")]


def test_fields_recorded_on_one_side_and_odd_shapes():
    entry = AdminAuditEntry(action="kyc.approve", target_type="kyc_submission", target_id="3",
                            before={"status": "pending", "user_id": 5}, after={"status": "approved"})
    assert [(c.field, c.before, c.after, c.changed) for c in audit_changes(entry)] == [
        ("Status", "pending", "approved", True), ("User", "5", "—", True)]
    entry = AdminAuditEntry(action="x", target_type="thing", before={"some_flag": False, "items": [1, 2]},
                            after={"some_flag": True, "items": [1, 2], "extra": None})
    assert [(c.field, c.before, c.after) for c in audit_changes(entry)] == [
        ("Some flag", "no", "yes"), ("Items", "1, 2", "1, 2"), ("Extra", "—", "—")]
    assert audit_changes(AdminAuditEntry(action="x", target_type="thing", before=None, after=None)) == []
    [only] = audit_changes(AdminAuditEntry(action="x", target_type="thing", before=None, after="on"))
    assert (only.field, only.before, only.after) == ("Value", "—", "on")
