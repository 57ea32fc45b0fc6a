"""Rule sets of a competition (issue #13): the daily and total loss floors, minimum trading
days, maximum open positions and lots per order, what a breach does; each participant's
daily-loss base; and the breaches, once per participant and rule.

Revision ID: 0009_rules
Revises: 0009_journal
"""
import sqlalchemy as sa
from alembic import op

import edutradex.types

revision = "0009_rules"
down_revision = "0009_journal"
branch_labels = None
depends_on = None

MONEY = edutradex.types.ScaledDecimal(precision=18, scale=2)
PERCENT = edutradex.types.ScaledDecimal(precision=7, scale=2)
LOTS = edutradex.types.ScaledDecimal(precision=16, scale=4)


def upgrade():
    with op.batch_alter_table("competitions") as batch_op:
        batch_op.add_column(sa.Column("max_daily_loss_percent", PERCENT, nullable=True))
        batch_op.add_column(sa.Column("max_total_loss_percent", PERCENT, nullable=True))
        batch_op.add_column(sa.Column("min_trading_days", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("max_open_positions", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("max_lots_per_order", LOTS, nullable=True))
        batch_op.add_column(sa.Column("breach_action", sa.String(length=12), nullable=True))
    op.execute(sa.table("competitions", sa.column("breach_action", sa.String())).update()
               .values(breach_action="FLAG"))
    with op.batch_alter_table("competitions") as batch_op:
        batch_op.alter_column("breach_action", existing_type=sa.String(length=12), nullable=False)

    with op.batch_alter_table("competition_participants") as batch_op:
        batch_op.add_column(sa.Column("day_start_balance", MONEY, nullable=True))
        batch_op.add_column(sa.Column("day_start_day", sa.Integer(), nullable=True))

    op.create_table(
        "competition_breaches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("competition_id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=20), nullable=False),
        sa.Column("action", sa.String(length=12), nullable=False),
        sa.Column("tick_id", sa.BigInteger(), nullable=True),
        sa.Column("tick_ts_ms", sa.BigInteger(), nullable=True),
        sa.Column("equity", MONEY, nullable=True),
        sa.Column("floor", MONEY, nullable=True),
        sa.Column("detail", sa.String(length=255), nullable=False),
        sa.Column("created_at", edutradex.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["competition_id"], ["competitions.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["participant_id"], ["competition_participants.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("participant_id", "rule", name="uq_competition_breaches_participant_rule"),
    )
    op.create_index("ix_competition_breaches_competition_id", "competition_breaches", ["competition_id"])


def downgrade():
    op.drop_index("ix_competition_breaches_competition_id", table_name="competition_breaches")
    op.drop_table("competition_breaches")
    with op.batch_alter_table("competition_participants") as batch_op:
        batch_op.drop_column("day_start_day")
        batch_op.drop_column("day_start_balance")
    with op.batch_alter_table("competitions") as batch_op:
        for name in ("breach_action", "max_lots_per_order", "max_open_positions", "min_trading_days",
                     "max_total_loss_percent", "max_daily_loss_percent"):
            batch_op.drop_column(name)
