"""Which account a page trades with, for the header's balance badge. Each view that trades
with something other than the demo balance says so explicitly (``use_competition``,
``use_credits``); nothing is guessed from the URL. Pages that say nothing show the demo
balance, which is what rise/fall trades with."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from flask import g, url_for
from flask_login import current_user

SHORT_NAME = 14  # characters of a competition's name in the badge (the header stays one row on phones)


@dataclass(frozen=True)
class TradingAccount:
    kind: str  # "demo", "competition" or "credits"
    label: str  # the badge's small caps line
    amount: Decimal
    currency: str  # "" for the demo balance (as before), "USD", "credits"
    title: str  # the full description, for the tooltip and screen readers
    href: str


def short_name(name: str) -> str:
    name = " ".join(name.split())
    return name if len(name) <= SHORT_NAME else name[:SHORT_NAME - 1].rstrip() + "…"


def use_competition(competition, participant) -> None:
    """This page trades with the participant's competition account."""
    g.trading_account = TradingAccount(
        kind="competition", label=short_name(competition.name), amount=participant.equity, currency="USD",
        title=f"{competition.name}: your competition account (equity {participant.equity:,.2f} USD, "
              f"cash {participant.cash:,.2f} USD)",
        href=url_for("competitions.detail", competition_id=competition.id))


def use_credits(wallet) -> None:
    """This page works with the credit wallet."""
    g.trading_account = TradingAccount(kind="credits", label="Credits", amount=wallet.balance, currency="credits",
                                       title=f"Credit wallet: {wallet.balance:,.2f} credits",
                                       href=url_for("wallet.index"))


def current_trading_account() -> TradingAccount:
    chosen = g.get("trading_account")
    if chosen is not None:
        return chosen
    return TradingAccount(kind="demo", label="Demo", amount=current_user.demo_balance, currency="",
                          title="Demo balance", href=url_for("auth.profile"))
