"""Trader journal notes and tags (issue #14) and the users' watchlists.

Revision ID: 0009_journal
Revises: 0009_fairplay
"""
import sqlalchemy as sa
from alembic import op

import edutradex.types

revision = "0009_journal"
down_revision = "0009_fairplay"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "journal_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("trade_kind", sa.String(length=10), nullable=False),
        sa.Column("trade_id", sa.BigInteger(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("updated_at", edutradex.types.UTCDateTime(), nullable=False),
        sa.CheckConstraint("trade_kind IN ('RISE_FALL', 'CFD')", name="ck_journal_notes_kind"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("trade_kind", "trade_id", name="uq_journal_notes_trade"),
    )
    with op.batch_alter_table("journal_notes") as batch_op:
        batch_op.create_index("ix_journal_notes_user_id", ["user_id"], unique=False)

    op.create_table(
        "watchlist_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", edutradex.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["symbol"], ["markets.symbol"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "symbol", name="uq_watchlist_entries_user_symbol"),
    )
    with op.batch_alter_table("watchlist_entries") as batch_op:
        batch_op.create_index("ix_watchlist_entries_user_position", ["user_id", "position"], unique=False)


def downgrade():
    op.drop_table("watchlist_entries")
    op.drop_table("journal_notes")
