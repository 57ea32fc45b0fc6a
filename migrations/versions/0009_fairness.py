"""Provably fair simulated prices (issue #14): committed seeds per market and period, the
config log that shapes each period's prices, and each simulated tick's number in its period.

Revision ID: 0009_fairness
Revises: 0009_alerts
"""

import sqlalchemy as sa
from alembic import op

import edutradex.types

revision = "0009_fairness"
down_revision = "0009_alerts"
branch_labels = None
depends_on = None

PRICE = edutradex.types.ScaledDecimal(precision=20, scale=8)


def upgrade():
    with op.batch_alter_table("ticks") as batch_op:
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))

    op.create_table(
        "fairness_periods",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("start_ms", sa.BigInteger(), nullable=False),
        sa.Column("end_ms", sa.BigInteger(), nullable=False),
        sa.Column("commitment", sa.String(length=64), nullable=False),
        sa.Column("seed_encrypted", sa.Text(), nullable=True),
        sa.Column("seed", sa.String(length=64), nullable=True),
        sa.Column("committed_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("revealed_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("reserved_through", sa.Integer(), nullable=False),
        sa.Column("tick_count", sa.Integer(), nullable=True),
        sa.Column("first_tick", sa.Integer(), nullable=True),
        sa.Column("last_tick", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("status_detail", sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("symbol", "start_ms", name="uq_fairness_periods_symbol_start"),
    )
    op.create_table(
        "fairness_config_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("period_start_ms", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("from_tick", sa.Integer(), nullable=False),
        sa.Column("to_tick", sa.Integer(), nullable=True),
        sa.Column("config", sa.Text(), nullable=True),
        sa.Column("anchor_mid", PRICE, nullable=True),
        sa.Column("anchor_ts_ms", sa.BigInteger(), nullable=True),
        sa.Column("recorded_at", edutradex.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_fairness_config_log_period", "fairness_config_log", ["symbol", "period_start_ms", "from_tick"],
                    unique=False)


def downgrade():
    op.drop_index("ix_fairness_config_log_period", table_name="fairness_config_log")
    op.drop_table("fairness_config_log")
    op.drop_table("fairness_periods")
    with op.batch_alter_table("ticks") as batch_op:
        batch_op.drop_column("seq")
