"""Template filters and the navigation, built from the endpoints the app really has."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal

from flask import Flask, current_app

# (label, endpoint, admin only). An item shows only when its feature is installed.
NAVIGATION = (
    ("Trade", "binary.trade", False),
    ("Markets", "market.index", False),
    ("Competitions", "competitions.index", False),
    ("Wallet", "wallet.index", False),
    ("History", "binary.history", False),
    ("Journal", "journal.index", False),
    ("Alerts", "alerts.index", False),
    ("Admin", "admin.index", True),
)


def money(value) -> str:
    if value is None:
        return "—"
    return f"{Decimal(value):,.2f}"


def datetime_utc(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def navigation_items(is_admin: bool) -> list[tuple[str, str]]:
    return [
        (label, endpoint)
        for label, endpoint, admin_only in NAVIGATION
        if endpoint in current_app.view_functions and (is_admin or not admin_only)
    ]


def has_endpoint(endpoint: str) -> bool:
    """Whether a feature's page exists in this app, so copy promises only what is there."""
    return endpoint in current_app.view_functions


def active_navigation(items: list[tuple[str, str]], current: str | None) -> str | None:
    """The one navigation endpoint to highlight: the page itself, else the first item of
    the page's feature (a trade's detail page lights up Trade, not History too)."""
    if not current:
        return None
    endpoints = [endpoint for _, endpoint in items]
    if current in endpoints:
        return current
    feature = current.split(".")[0]
    return next((e for e in endpoints if e.split(".")[0] == feature), None)


def init_app(app: Flask) -> None:
    app.jinja_env.filters["money"] = money
    app.jinja_env.filters["utc"] = datetime_utc

    app.add_url_rule("/branding.css", endpoint="branding_css", view_func=branding_css)

    from .trading_account import current_trading_account

    @app.context_processor
    def inject_globals():
        site_name, accent_colour = branding()
        return {"site_name": site_name, "accent_colour": accent_colour, "navigation_items": navigation_items,
                "active_navigation": active_navigation, "has_endpoint": has_endpoint,
                "trading_account": current_trading_account}


def branding() -> tuple[str, str]:
    """The white-label site name and accent colour (admin settings, else the config). An
    error page must still render when the database is the problem, hence the fallback."""
    from sqlalchemy.exc import SQLAlchemyError

    from .settings import get_setting

    try:
        return get_setting("site_name"), get_setting("accent_colour")
    except SQLAlchemyError:
        return current_app.config["SITE_NAME"], current_app.config["ACCENT_COLOUR"]


def branding_css():
    """The accent colour as a stylesheet: the CSP forbids inline styles. base.html links
    it with the colour in the URL, so a changed colour is a new, cacheable URL."""
    from .contrast import accent_palette

    _, accent = branding()
    if not re.fullmatch(r"#[0-9a-fA-F]{6}", accent):  # the env fallback is not validated like the setting
        accent = "#2563eb"
    properties = " ".join(f"{name}: {value};" for name, value in accent_palette(accent).items())
    css = f":root {{ {properties} }}\n"
    return current_app.response_class(css, mimetype="text/css", headers={"Cache-Control": "public, max-age=86400"})
