"""Helpers for driving the app through its real forms in the Flask test client."""

from __future__ import annotations

import re

_CSRF_INPUT = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')
_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def csrf_token(client, path: str = "/login") -> str:
    html = client.get(path).get_data(as_text=True)
    match = _CSRF_META.search(html) or _CSRF_INPUT.search(html)
    assert match, f"no CSRF token on {path}"
    return next(g for g in match.groups() if g)


class AuthActions:
    def __init__(self, client):
        self.client = client

    def register(self, name="Trader Joe", email="joe@example.com", password="correct-horse-1", confirm=None):
        token = csrf_token(self.client, "/register")
        return self.client.post("/register", data={
            "csrf_token": token, "name": name, "email": email, "password": password,
            "confirm": password if confirm is None else confirm,
        })

    def login(self, email="joe@example.com", password="correct-horse-1"):
        token = csrf_token(self.client, "/login")
        return self.client.post("/login", data={"csrf_token": token, "email": email, "password": password})

    def logout(self):
        token = csrf_token(self.client, "/")
        return self.client.post("/logout", data={"csrf_token": token})

    def htmx_headers(self, path: str = "/") -> dict:
        return {"HX-Request": "true", "X-CSRFToken": csrf_token(self.client, path)}
