"""The live leaderboard (issue #13): when each account reached its equity (the tie-break),
the freeze snapshot (``freeze_minutes`` term, ``frozen_at``, each participant's frozen
equity) and the rebuy top-ups behind the time-weighted return.

Revision ID: 0008_board
Revises: 0008_risefall
"""
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

import edutradex.types

revision = "0008_board"
down_revision = "0008_risefall"
branch_labels = None
depends_on = None

MONEY = edutradex.types.ScaledDecimal(precision=18, scale=2)


def upgrade():
    # New NOT NULL columns on tables with rows: added nullable, filled in, then NOT NULL.
    with op.batch_alter_table("competitions") as batch_op:
        batch_op.add_column(sa.Column("freeze_minutes", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("frozen_at", edutradex.types.UTCDateTime(), nullable=True))
    op.execute(sa.table("competitions", sa.column("freeze_minutes", sa.Integer())).update().values(freeze_minutes=0))
    with op.batch_alter_table("competitions") as batch_op:
        batch_op.alter_column("freeze_minutes", existing_type=sa.Integer(), nullable=False)

    with op.batch_alter_table("competition_participants") as batch_op:
        batch_op.add_column(sa.Column("equity_at_ms", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("frozen_equity", MONEY, nullable=True))
        batch_op.add_column(sa.Column("frozen_equity_at_ms", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("topped_up", MONEY, nullable=True))
        batch_op.add_column(sa.Column("topped_up_cent_seconds", sa.BigInteger(), nullable=True))
    participants = sa.table("competition_participants", sa.column("topped_up", MONEY),
                            sa.column("topped_up_cent_seconds", sa.BigInteger()))
    op.execute(participants.update().values(topped_up=Decimal("0.00"), topped_up_cent_seconds=0))
    with op.batch_alter_table("competition_participants") as batch_op:
        batch_op.alter_column("topped_up", existing_type=MONEY, nullable=False)
        batch_op.alter_column("topped_up_cent_seconds", existing_type=sa.BigInteger(), nullable=False)


def downgrade():
    with op.batch_alter_table("competition_participants") as batch_op:
        for name in ("topped_up_cent_seconds", "topped_up", "frozen_equity_at_ms", "frozen_equity", "equity_at_ms"):
            batch_op.drop_column(name)
    with op.batch_alter_table("competitions") as batch_op:
        batch_op.drop_column("frozen_at")
        batch_op.drop_column("freeze_minutes")
