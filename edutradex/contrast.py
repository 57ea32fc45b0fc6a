"""WCAG 2.x colour contrast, for the white-label accent colour.

The accent fills buttons (text on it must be readable) and colours links on the dark page
(it must be readable on the page). No single colour does both for every choice, so the
branding stylesheet derives two companions from whatever colour an admin picks: the text
colour for filled elements (black or white, whichever contrasts more: every colour reaches
at least 4.58:1 with one of them) and, for links, the accent lightened just enough to reach
4.5:1 on the lightest dark panel."""

from __future__ import annotations

import re

AA_NORMAL_TEXT = 4.5
WHITE, BLACK = "#ffffff", "#000000"
DARKEST_PANEL = "#182033"  # app.css --panel-2: the lightest background that links sit on
HEX = re.compile(r"#[0-9a-fA-F]{6}")


def _channel(value: int) -> float:
    srgb = value / 255
    return srgb / 12.92 if srgb <= 0.04045 else ((srgb + 0.055) / 1.055) ** 2.4


def luminance(colour: str) -> float:
    """Relative luminance of #rrggbb (0 for black, 1 for white)."""
    if not HEX.fullmatch(colour):
        raise ValueError(f"not a #rrggbb colour: {colour!r}")
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b)


def contrast_ratio(first: str, second: str) -> float:
    """(lighter + 0.05) / (darker + 0.05): 1 (same) to 21 (black on white)."""
    a, b = luminance(first), luminance(second)
    return (max(a, b) + 0.05) / (min(a, b) + 0.05)


def text_colour_on(background: str) -> str:
    """White or black, whichever is easier to read on `background` (white on a tie)."""
    return WHITE if contrast_ratio(background, WHITE) >= contrast_ratio(background, BLACK) else BLACK


def _mix(colour: str, other: str, share: float) -> str:
    parts = []
    for i in (1, 3, 5):
        a, b = int(colour[i:i + 2], 16), int(other[i:i + 2], 16)
        parts.append(round(a + (b - a) * share))
    return "#" + "".join(f"{p:02x}" for p in parts)


def readable_on(colour: str, background: str, minimum: float = AA_NORMAL_TEXT) -> str:
    """`colour` itself when it reaches `minimum` on `background`, else the least tint of it
    towards white (on a dark background) or shade towards black (on a light one) that does."""
    if contrast_ratio(colour, background) >= minimum:
        return colour.lower()
    towards = WHITE if luminance(background) < 0.5 else BLACK
    for step in range(1, 101):
        candidate = _mix(colour, towards, step / 100)
        if contrast_ratio(candidate, background) >= minimum:
            return candidate
    return towards


def accent_palette(accent: str) -> dict[str, str]:
    """The CSS custom properties for an accent colour."""
    accent = accent.lower()
    return {"--accent": accent, "--accent-text": text_colour_on(accent),
            "--accent-fg": readable_on(accent, DARKEST_PANEL)}


def describe_accent(accent: str) -> str:
    """What the palette does with an accent, in words for the admin who picked it."""
    palette = accent_palette(accent)
    text = palette["--accent-text"]
    words = f"{'White' if text == WHITE else 'Black'} text on it ({contrast_ratio(accent, text):.1f}:1"
    words += f", WCAG AA needs {AA_NORMAL_TEXT}:1)"
    if palette["--accent-fg"] != palette["--accent"]:
        words += f"; links use the lighter {palette['--accent-fg']} to stay readable on the dark pages"
    return words + "."
