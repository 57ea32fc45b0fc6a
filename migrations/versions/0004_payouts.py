"""SEPA payout batches and their lines; payout attempts on withdrawals (retries, reconciler)

Revision ID: 0004_payouts
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa
import edutradex.types


revision = "0004_payouts"
down_revision = "0004_authority"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "payout_batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("message_id", sa.String(length=35), nullable=False),
        sa.Column("total", edutradex.types.ScaledDecimal(precision=18, scale=2), nullable=False),
        sa.Column("line_count", sa.Integer(), nullable=False),
        sa.Column("bank_reference", sa.String(length=64), nullable=True),
        sa.Column("failure_reason", sa.String(length=255), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("created_at", edutradex.types.UTCDateTime(), nullable=False),
        sa.Column("closed_by", sa.Integer(), nullable=True),
        sa.Column("closed_at", edutradex.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"]),
        sa.ForeignKeyConstraint(["closed_by"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id"),
    )
    with op.batch_alter_table("payout_batches") as batch_op:
        batch_op.create_index(batch_op.f("ix_payout_batches_status"), ["status"], unique=False)
    op.create_table(
        "payout_batch_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("withdrawal_id", sa.Integer(), nullable=False),
        sa.Column("amount", edutradex.types.ScaledDecimal(precision=18, scale=2), nullable=False),
        sa.Column("end_to_end_id", sa.String(length=35), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failure_reason", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(["batch_id"], ["payout_batches.id"]),
        sa.ForeignKeyConstraint(["withdrawal_id"], ["withdrawals.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("end_to_end_id"),
        sa.UniqueConstraint("withdrawal_id"),
    )
    with op.batch_alter_table("payout_batch_lines") as batch_op:
        batch_op.create_index(batch_op.f("ix_payout_batch_lines_batch_id"), ["batch_id"], unique=False)
    with op.batch_alter_table("withdrawals") as batch_op:
        batch_op.add_column(sa.Column("payout_attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("next_attempt_at", edutradex.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("last_error", sa.String(length=255), nullable=True))


def downgrade():
    with op.batch_alter_table("withdrawals") as batch_op:
        batch_op.drop_column("last_error")
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("payout_attempts")
    with op.batch_alter_table("payout_batch_lines") as batch_op:
        batch_op.drop_index(batch_op.f("ix_payout_batch_lines_batch_id"))
    op.drop_table("payout_batch_lines")
    with op.batch_alter_table("payout_batches") as batch_op:
        batch_op.drop_index(batch_op.f("ix_payout_batches_status"))
    op.drop_table("payout_batches")
