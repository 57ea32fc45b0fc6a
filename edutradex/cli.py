"""Platform-wide commands. Features add their own seeders to app.extensions['seeders']."""

import click
from flask import current_app


def init_app(app):
    app.extensions.setdefault("seeders", [])

    @app.cli.command("seed")
    @click.option("--admin-email", default="admin@edutradex.local", show_default=True)
    def seed_command(admin_email):
        """Seed default data once: an admin account and every feature's defaults."""
        from .auth import service as auth_service

        if not auth_service.admin_exists():
            user, password = auth_service.create_admin(admin_email)
            click.echo("=" * 64)
            click.echo(f" Admin account: {user.email}")
            click.echo(f" Password (shown only this once): {password}")
            click.echo("=" * 64)
        for seeder in current_app.extensions["seeders"]:
            message = seeder()
            if message:
                click.echo(message)
