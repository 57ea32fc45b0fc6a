"""WCAG contrast for the accent colour: the figures, the text colour picked for any accent,
and the link tint that stays readable on the dark pages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config import Config
from edutradex.contrast import (
    AA_NORMAL_TEXT,
    BLACK,
    DARKEST_PANEL,
    WHITE,
    accent_palette,
    contrast_ratio,
    describe_accent,
    luminance,
    readable_on,
    text_colour_on,
)

APP_CSS = Path(__file__).resolve().parents[1] / "edutradex" / "static" / "css" / "app.css"
colours = st.integers(0, 0xFFFFFF).map(lambda n: f"#{n:06x}")


def test_known_figures():
    assert luminance(BLACK) == 0 and luminance(WHITE) == pytest.approx(1)
    assert contrast_ratio(BLACK, WHITE) == pytest.approx(21)
    assert contrast_ratio("#777777", WHITE) == pytest.approx(4.48, abs=0.01)  # the classic just-fails grey
    assert contrast_ratio("#3b82f6", WHITE) == pytest.approx(3.68, abs=0.01)  # the old default: fails
    assert contrast_ratio("#3b82f6", WHITE) == contrast_ratio(WHITE, "#3b82f6")


def test_the_default_accent_takes_white_text_at_aa():
    assert Config.ACCENT_COLOUR == "#2563eb"
    assert text_colour_on(Config.ACCENT_COLOUR) == WHITE
    assert contrast_ratio(Config.ACCENT_COLOUR, WHITE) >= AA_NORMAL_TEXT


def test_the_stylesheet_defaults_match_the_palette_of_the_default_accent():
    root = re.search(r":root\s*{([^}]*)}", APP_CSS.read_text()).group(1)
    declared = dict(re.findall(r"(--accent[\w-]*):\s*(#[0-9a-fA-F]{6})", root))
    assert declared == accent_palette(Config.ACCENT_COLOUR)
    assert re.search(r"--panel-2:\s*" + DARKEST_PANEL, root)


def test_text_colour_picks_the_readable_one():
    assert text_colour_on("#3b82f6") == BLACK
    assert text_colour_on("#ffff00") == BLACK
    assert text_colour_on("#1d4ed8") == WHITE
    assert text_colour_on("#000000") == WHITE


def test_readable_on_keeps_a_good_colour_and_lightens_a_dark_one():
    assert readable_on("#ffff00", DARKEST_PANEL) == "#ffff00"
    tint = readable_on("#1d4ed8", DARKEST_PANEL)
    assert tint != "#1d4ed8" and contrast_ratio(tint, DARKEST_PANEL) >= AA_NORMAL_TEXT
    assert contrast_ratio(readable_on("#f0f0f0", WHITE), WHITE) >= AA_NORMAL_TEXT  # shaded on a light page


@given(colours)
def test_every_accent_gets_aa_text_and_aa_links(accent):
    palette = accent_palette(accent)
    assert contrast_ratio(accent, palette["--accent-text"]) >= AA_NORMAL_TEXT
    assert contrast_ratio(palette["--accent-fg"], DARKEST_PANEL) >= AA_NORMAL_TEXT


def test_describe_accent():
    assert describe_accent("#2563eb").startswith("White text on it (5.2:1, WCAG AA needs 4.5:1); links use the lighter")
    assert describe_accent("#ffff00") == "Black text on it (19.6:1, WCAG AA needs 4.5:1)."
