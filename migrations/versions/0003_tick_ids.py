"""Tick ids are given by the feed: SQLite's ticks table becomes AUTOINCREMENT, so ids the
feed reserved (raising sqlite_sequence) are never handed to another row. PostgreSQL's
BIGSERIAL sequence already behaves that way.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _rebuild_ticks(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("ticks", recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}):
        pass


def upgrade():
    _rebuild_ticks(True)


def downgrade():
    _rebuild_ticks(False)
