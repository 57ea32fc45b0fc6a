import click

from . import service


def init_app(app):
    @app.cli.command("create-admin")
    @click.argument("email")
    @click.option("--name", default="Administrator", show_default=True)
    @click.option("--password", default=None, help="Leave out to generate one (printed once).")
    def create_admin_command(email, name, password):
        """Create an admin account, or promote an existing one."""
        user, generated = service.create_admin(email, name, password)
        if generated:
            click.echo(f"Admin {user.email} created. Password (shown once): {generated}")
        else:
            click.echo(f"{user.email} is an admin.")
