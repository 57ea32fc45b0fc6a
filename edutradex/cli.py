"""Platform-wide commands. Features add their own seeders to app.extensions['seeders'] (reference
data, every deploy) and 'laptop_seeders' (sample data for `flask seed` on a laptop only)."""

import click
from flask import current_app


def seed_reference_data() -> list[str]:
    """Every feature's reference data (the default markets, ...): idempotent, creates no
    users, so the Procfile's `release` runs it on every deploy."""
    return [message for seeder in current_app.extensions["seeders"] if (message := seeder())]


def init_app(app):
    app.extensions.setdefault("seeders", [])
    app.extensions.setdefault("laptop_seeders", [])

    @app.cli.command("seed")
    @click.option("--admin-email", default="admin@edutradex.local", show_default=True)
    @click.option("--reference", is_flag=True,
                  help="Only reference data (markets, ...), no admin account: what a deploy's release runs.")
    @click.option("--samples/--no-samples", default=True, show_default=True,
                  help="Without --reference: also sample data for a laptop (free practice competitions).")
    def seed_command(admin_email, reference, samples):
        """Seed default data once: every feature's reference data and, unless --reference,
        an admin account for a laptop (a deploy creates its first admin with create-admin)."""
        from .auth import service as auth_service

        if not reference and not auth_service.admin_exists():
            user, password = auth_service.create_admin(admin_email)
            click.echo("=" * 64)
            click.echo(f" Admin account: {user.email}")
            click.echo(f" Password (shown only this once): {password}")
            click.echo("=" * 64)
        for message in seed_reference_data():
            click.echo(message)
        if samples and not reference:
            for seeder in current_app.extensions["laptop_seeders"]:
                if message := seeder():
                    click.echo(message)
