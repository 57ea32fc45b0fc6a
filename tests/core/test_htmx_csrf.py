"""HTMX requests carry the CSRF token as a header (hx-headers on <body>)."""

from edutradex.auth.models import User
from edutradex.extensions import db
from tests.factories import make_user


def test_base_template_sends_the_token_with_every_htmx_request(app, client, auth):
    with app.app_context():
        make_user("joe@example.com")
    auth.login()
    html = client.get("/").get_data(as_text=True)
    assert 'hx-headers=\'{"X-CSRFToken": "' in html


def test_header_token_is_accepted_and_a_missing_one_refused(app, client, auth):
    with app.app_context():
        user_id = make_user("joe@example.com").id
    auth.login()
    refused = client.post("/profile", data={"profile-name": "Changed"}, headers={"HX-Request": "true"})
    assert refused.status_code == 400
    assert refused.headers["HX-Retarget"] == "#toasts"
    assert "security token" in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(User, user_id).name == "Test Trader"

    accepted = client.post("/profile", data={"profile-name": "Changed"}, headers=auth.htmx_headers("/profile"))
    assert accepted.status_code == 302
    with app.app_context():
        assert db.session.get(User, user_id).name == "Changed"
