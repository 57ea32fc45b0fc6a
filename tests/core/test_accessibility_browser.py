"""Accessibility in a real browser: the phone menu is a real button that a keyboard and a
screen reader can use, and text on the accent colour reaches WCAG AA as rendered."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from edutradex.contrast import AA_NORMAL_TEXT, contrast_ratio
from tests.support.browser import sign_up
from tests.support.live import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def server(tmp_path):
    server = LiveServer(tmp_path / "live", SEED_BACKFILL_HOURS="0").prepare().start()
    yield server
    server.stop()


def hex_of(css_rgb: str) -> str:
    parts = css_rgb[css_rgb.index("(") + 1:css_rgb.index(")")].split(",")
    return "#" + "".join(f"{int(float(p)):02x}" for p in parts[:3])


def test_phone_menu_button_works_by_keyboard_and_announces_its_state(server, page):
    page.set_viewport_size({"width": 390, "height": 844})
    sign_up(page, server.url, "Keyboard User", "keys@example.com")
    menu = page.get_by_role("button", name="Menu")
    expect(menu).to_be_visible()
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(menu).to_have_attribute("aria-controls", "main-nav")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav).to_be_hidden()
    # reach it with the keyboard from the top of the page
    page.locator("body").focus()
    for _ in range(6):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.getAttribute('aria-controls')") == "main-nav":
            break
    assert page.evaluate("document.activeElement.getAttribute('aria-controls')") == "main-nav"
    page.keyboard.press("Enter")
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(nav).to_be_visible()
    page.keyboard.press("Tab")  # into the menu it opened
    assert page.evaluate("document.activeElement.closest('#main-nav') !== null")
    page.keyboard.press("Escape")
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(nav).to_be_hidden()
    assert page.evaluate("document.activeElement.getAttribute('aria-controls')") == "main-nav"
    page.keyboard.press("Space")
    expect(nav).to_be_visible()
    nav.get_by_role("link", name="Markets").click()
    page.wait_for_url("**/markets")


def test_text_on_the_accent_is_readable_as_rendered(server, page):
    page.goto(server.url + "/")
    button = page.get_by_role("link", name="Start with a free demo account")
    colours = button.evaluate("el => { const s = getComputedStyle(el); return [s.color, s.backgroundColor]; }")
    text, background = (hex_of(c) for c in colours)
    assert background == "#2563eb" and text == "#ffffff"
    assert contrast_ratio(text, background) >= AA_NORMAL_TEXT
    # the accent as text on the dark page uses the readable tint
    accent_text = hex_of(page.locator(".hero .accent").evaluate("el => getComputedStyle(el).color"))
    assert accent_text == "#5384ef"
    assert contrast_ratio(accent_text, "#182033") >= AA_NORMAL_TEXT
