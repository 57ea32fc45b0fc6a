def test_security_headers_on_every_page(client):
    for path in ("/", "/login", "/healthz", "/nope"):
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "script-src 'self';" in csp  # no inline scripts, no CDN
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_pages_load_front_end_packages_from_our_own_static_folder(client):
    html = client.get("/login").get_data(as_text=True)
    for name in ("htmx.min.js", "socket.io.min.js"):
        assert f'src="/static/vendor/{name}"' in html
    assert "https://" not in html.split("<body")[0]


def test_extra_csp_sources_from_features(app, client):
    app.config["CSP_EXTRA_SOURCES"] = {"script-src": ["https://js.stripe.example"], "frame-src": ["https://js.stripe.example"]}
    csp = client.get("/login").headers["Content-Security-Policy"]
    assert "script-src 'self' https://js.stripe.example" in csp
    assert "frame-src https://js.stripe.example" in csp


def test_errors_are_pages_json_or_htmx_fragments(client):
    page = client.get("/missing")
    assert page.status_code == 404 and "That page does not exist." in page.get_data(as_text=True)
    api = client.get("/api/missing")
    assert api.status_code == 404 and api.get_json() == {"error": "That page does not exist."}
    fragment = client.get("/missing", headers={"HX-Request": "true"})
    assert fragment.status_code == 404
    assert fragment.headers["HX-Retarget"] == "#toasts"
    assert 'class="toast toast-error"' in fragment.get_data(as_text=True)
    assert "<html" not in fragment.get_data(as_text=True)

