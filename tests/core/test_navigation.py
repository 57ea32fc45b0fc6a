"""The header navigation: items for installed features, one of them highlighted."""


def test_navigation_highlights_exactly_one_item(app, client, auth):
    from tests.factories import make_user

    with app.app_context():
        make_user("joe@example.com")
    auth.login()
    for path, label in (("/history", "History"), ("/trade", "Trade"), ("/markets", "Markets")):
        html = client.get(path).get_data(as_text=True)
        assert html.count('aria-current="page"') == 1, path
        assert f'class="active" aria-current="page">{label}</a>' in html
