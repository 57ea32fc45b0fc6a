"""Template filters and the navigation, built from the endpoints the app really has."""

from __future__ import annotations

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


def init_app(app: Flask) -> None:
    app.jinja_env.filters["money"] = money
    app.jinja_env.filters["utc"] = datetime_utc

    @app.context_processor
    def inject_globals():
        return {"site_name": app.config["SITE_NAME"], "navigation_items": navigation_items}
