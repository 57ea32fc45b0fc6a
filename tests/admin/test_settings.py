"""Settings: validated, audited, and the site name and accent colour brand every page."""

from decimal import Decimal

import pytest

from edutradex.extensions import db
from edutradex.settings import get_setting

from .conftest import audit_entries


def setting(app, key):
    with app.app_context():
        return get_setting(key)


@pytest.mark.parametrize("key, raw, expected", [
    ("default_demo_balance", "2500.50", Decimal("2500.50")),
    ("default_payout_percent", "85", Decimal("85.00")),
    ("allowed_durations", "60, 5, 15", [5, 15, 60]),
    ("max_open_trades", "7", 7),
    ("site_name", "Acme Academy", "Acme Academy"),
    ("accent_colour", "#FF8800", "#ff8800"),
])
def test_each_setting_changes_and_is_audited(app, client, admin, admin_id, key, raw, expected):
    before = setting(app, key)
    response = admin.post(f"/admin/settings/{key}", {"value": raw}, htmx=True)
    assert response.status_code == 204 and response.headers["HX-Redirect"] == "/admin/settings"
    assert setting(app, key) == expected
    [entry] = audit_entries(app, "setting.change")
    assert (entry.actor_id, entry.target_type, entry.target_id) == (admin_id, "setting", key)
    assert entry.after == {key: str(expected) if isinstance(expected, Decimal) else expected}
    assert entry.before == {key: str(before) if isinstance(before, Decimal) else before}


@pytest.mark.parametrize("key, raw", [
    ("default_demo_balance", "NaN"), ("default_demo_balance", "1e309"), ("default_demo_balance", "-5"),
    ("default_demo_balance", "10.001"), ("max_open_trades", "0"), ("allowed_durations", "abc"),
    ("site_name", ""), ("site_name", "x" * 41), ("accent_colour", "red"),
    ("accent_colour", "#12345g;}body{x:y"), ("default_payout_percent", "150"), ("default_payout_percent", "0.5"),
])
def test_bad_values_are_refused_and_change_nothing(app, client, admin, key, raw):
    before = setting(app, key)
    response = admin.post(f"/admin/settings/{key}", {"value": raw}, htmx=True)
    assert response.status_code == 400
    assert response.headers["HX-Retarget"] == "#toasts"
    assert setting(app, key) == before
    assert audit_entries(app) == []


def test_unknown_setting_is_404(app, client, admin):
    assert admin.post("/admin/settings/secret_key", {"value": "x"}).status_code == 404
    assert audit_entries(app) == []


def test_unchanged_value_records_nothing(app, client, admin):
    response = admin.post("/admin/settings/max_open_trades", {"value": str(setting(app, "max_open_trades"))})
    assert response.status_code == 302
    assert "is unchanged" in client.get("/admin/settings").get_data(as_text=True)
    assert audit_entries(app) == []


def test_settings_page_lists_every_setting(app, client, admin):
    html = client.get("/admin/settings").get_data(as_text=True)
    for label in ("Default demo balance", "Default payout %", "Allowed durations", "Maximum open trades",
                  "Site name", "Accent colour"):
        assert label in html


def test_site_name_and_accent_colour_brand_every_page(app, client, admin):
    admin.post("/admin/settings/site_name", {"value": "Acme Academy"})
    admin.post("/admin/settings/accent_colour", {"value": "#ff8800"})
    for path in ("/", "/profile", "/admin/"):
        html = client.get(path).get_data(as_text=True)
        assert "Acme Academy" in html and "EduTradeX" not in html
        assert 'href="/branding.css?v=ff8800"' in html
        assert 'style="' not in html and "<style" not in html  # the CSP forbids inline styles
    anonymous = app.test_client()
    assert "Acme Academy" in anonymous.get("/login").get_data(as_text=True)
    css = anonymous.get("/branding.css?v=ff8800")
    assert css.status_code == 200 and css.mimetype == "text/css"
    assert css.get_data(as_text=True).strip() == ":root { --accent: #ff8800; --accent-text: #000000; --accent-fg: #ff8800; }"


def test_branding_falls_back_to_the_config(app):
    anonymous = app.test_client()
    assert anonymous.get("/branding.css").get_data(as_text=True).strip() == \
        ":root { --accent: #2563eb; --accent-text: #ffffff; --accent-fg: #5384ef; }"
    assert "EduTradeX" in anonymous.get("/login").get_data(as_text=True)


def test_new_users_get_the_default_demo_balance_setting(app, client, admin):
    from tests.factories import make_user

    admin.post("/admin/settings/default_demo_balance", {"value": "777"})
    with app.app_context():
        user = make_user("new@example.com")
        assert user.demo_balance == Decimal("777.00")
        db.session.rollback()


def test_accent_colour_gets_a_readable_text_colour_and_the_admin_is_told(app, client, admin):
    response = admin.post("/admin/settings/accent_colour", {"value": "#ffff00"})
    assert response.status_code == 302
    assert "Accent colour set to #ffff00. Black text on it (19.6:1" in client.get("/admin/settings").get_data(as_text=True)
    css = app.test_client().get("/branding.css?v=ffff00").get_data(as_text=True)
    assert "--accent: #ffff00; --accent-text: #000000;" in css
    page = client.get("/admin/settings").get_data(as_text=True)
    assert 'data-testid="accent-note"' in page and "Black text on it" in page


def test_a_refused_value_names_the_setting_by_its_label(app, client, admin):
    response = admin.post("/admin/settings/default_payout_percent", {"value": "150"}, htmx=True)
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "Default payout %: must be at most 100." in text and text.count("Default payout %") == 1
