"""Helpers for driving the app in a real browser (Playwright)."""

from __future__ import annotations

from tests.factories import PASSWORD


def sign_up(page, base: str, name: str, email: str, password: str = PASSWORD, *, open_form: bool = True) -> None:
    """Create an account through the register form and wait for the dashboard. With
    open_form=False the page is already on the form (reached through a link)."""
    if open_form:
        page.goto(base + "/register")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_label("Confirm password").fill(password)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(base + "/")
