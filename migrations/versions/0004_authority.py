"""The price authority's fence and watermark (feed_authority), recorded tick gaps, and the
epoch that wrote each tick.

Revision ID: 0004_authority
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

import edutradex.types

revision = "0004_authority"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "feed_authority",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("flushed_ms", sa.BigInteger(), nullable=True),
        sa.Column("clean", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "tick_gaps",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=True),
        sa.Column("from_ms", sa.BigInteger(), nullable=False),
        sa.Column("to_ms", sa.BigInteger(), nullable=False),
        sa.Column("ticks_lost", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("recorded_at", edutradex.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_tick_gaps_to", "tick_gaps", ["to_ms"], unique=False)
    # ADD COLUMN: no table rebuild, so SQLite's AUTOINCREMENT (0003) stays
    op.add_column("ticks", sa.Column("epoch", sa.BigInteger(), nullable=True))


def downgrade():
    with op.batch_alter_table("ticks", table_kwargs={"sqlite_autoincrement": True}) as batch_op:
        batch_op.drop_column("epoch")
    op.drop_index("ix_tick_gaps_to", table_name="tick_gaps")
    op.drop_table("tick_gaps")
    op.drop_table("feed_authority")
