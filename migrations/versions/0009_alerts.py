"""Price alerts (issue #14): the alerts, their fires (the notifications, unique per alert and
tick) and the alert engine's per-symbol watermark.

Revision ID: 0009_alerts
Revises: 0009_rules
"""
import sqlalchemy as sa
from alembic import op

import edutradex.types

revision = "0009_alerts"
down_revision = "0009_rules"
branch_labels = None
depends_on = None

PRICE = edutradex.types.ScaledDecimal(precision=20, scale=8)


def upgrade():
    op.create_table(
        "price_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("level", PRICE, nullable=False),
        sa.Column("repeat", sa.Boolean(), nullable=False),
        sa.Column("watching", sa.String(length=2), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("expires_at", edutradex.types.UTCDateTime(), nullable=True),
        sa.Column("created_price", PRICE, nullable=False),
        sa.Column("created_at", edutradex.types.UTCDateTime(), nullable=False),
        sa.Column("fire_count", sa.Integer(), nullable=False),
        sa.Column("last_tick_id", sa.BigInteger(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_price_alerts_user_status", "price_alerts", ["user_id", "status"])
    op.create_index("ix_price_alerts_status_symbol", "price_alerts", ["status", "symbol"])
    op.create_table(
        "alert_fires",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("tick_id", sa.BigInteger(), nullable=False),
        sa.Column("tick_ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("price", PRICE, nullable=False),
        sa.Column("message", sa.String(length=200), nullable=False),
        sa.Column("created_at", edutradex.types.UTCDateTime(), nullable=False),
        sa.Column("read_at", edutradex.types.UTCDateTime(), nullable=True),
        sa.Column("emailed_at", edutradex.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["alert_id"], ["price_alerts.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("alert_id", "tick_id", name="uq_alert_fires_alert_tick"),
    )
    op.create_index("ix_alert_fires_user_read", "alert_fires", ["user_id", "read_at"])
    op.create_table(
        "alert_engine_state",
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("last_tick_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", edutradex.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("symbol"),
    )


def downgrade():
    op.drop_table("alert_engine_state")
    op.drop_index("ix_alert_fires_user_read", table_name="alert_fires")
    op.drop_table("alert_fires")
    op.drop_index("ix_price_alerts_status_symbol", table_name="price_alerts")
    op.drop_index("ix_price_alerts_user_status", table_name="price_alerts")
    op.drop_table("price_alerts")
