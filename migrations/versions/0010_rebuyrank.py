"""The leaderboard's freeze snapshot keeps each participant's rebuy top-ups with the frozen
equity (issue #13: with rebuys the board ranks by the time-weighted return on the money paid
in, so a frozen board rebuilt after a rebuy during the freeze must score the snapshot's top-ups).

Revision ID: 0010_rebuyrank
Revises: 0009_fairness
"""
import sqlalchemy as sa
from alembic import op

import edutradex.types

revision = "0010_rebuyrank"
down_revision = "0009_fairness"
branch_labels = None
depends_on = None

MONEY = edutradex.types.ScaledDecimal(precision=18, scale=2)


def upgrade():
    with op.batch_alter_table("competition_participants") as batch_op:
        batch_op.add_column(sa.Column("frozen_topped_up", MONEY, nullable=True))
        batch_op.add_column(sa.Column("frozen_topped_up_cent_seconds", sa.BigInteger(), nullable=True))


def downgrade():
    with op.batch_alter_table("competition_participants") as batch_op:
        batch_op.drop_column("frozen_topped_up_cent_seconds")
        batch_op.drop_column("frozen_topped_up")
