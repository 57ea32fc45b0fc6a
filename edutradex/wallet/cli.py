"""``flask wallet ...`` commands."""

import sys

import click
from flask import Flask
from flask.cli import AppGroup

wallet_cli = AppGroup("wallet", help="Credit wallet: check the books.")


@wallet_cli.command("verify")
def verify_command():
    """Recompute every wallet and platform account from the ledger and check the
    platform-wide sum. Exits 1 and lists the mismatches if the books do not balance."""
    from .verify import platform_totals, verify_ledger

    problems = verify_ledger()
    totals = platform_totals()
    click.echo("Held: " + ", ".join(f"{name} {amount:.2f}" for name, amount in totals.items()))
    if problems:
        for problem in problems:
            click.echo(f"MISMATCH {problem}", err=True)
        click.echo(f"{len(problems)} mismatch(es): the books do not balance.", err=True)
        sys.exit(1)
    click.echo("OK: every wallet and platform account matches its ledger entries, and the platform balances.")


@wallet_cli.command("fund-revenue")
@click.argument("amount")
@click.option("--reason", required=True, help="Why (kept on the ledger entry), e.g. the competition it guarantees.")
def fund_revenue_command(amount, reason):
    """Put AMOUNT credits into platform revenue from outside: the account guaranteed pools
    are topped up from. A competition whose guarantee it could not cover is paid at the
    competition clock's next cycle."""
    from ..errors import DomainError
    from .service import fund_platform_revenue

    try:
        balance = fund_platform_revenue(amount, reason)
    except DomainError as refused:
        click.echo(f"Refused: {refused.message}", err=True)
        sys.exit(2)
    click.echo(f"Platform revenue now holds {balance:,.2f} credits.")


@wallet_cli.command("fingerprint-kyc")
def fingerprint_kyc_command():
    """Compute the identity fingerprints (fair play) of KYC submissions made before they
    existed. Safe to run again: only submissions without one are touched."""
    from .kyc import fingerprint_old_submissions

    click.echo(f"{fingerprint_old_submissions()} KYC submission(s) fingerprinted.")


def init_app(app: Flask) -> None:
    app.cli.add_command(wallet_cli)
