"""Competitions: when the "starts in 15 minutes" reminder was queued (sent once).

Revision ID: 0006_reminders
Revises: 0005_competitions
"""

import sqlalchemy as sa
from alembic import op

import edutradex.types

revision = "0006_reminders"
down_revision = "0005_competitions"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("competitions") as batch_op:
        batch_op.add_column(sa.Column("reminder_sent_at", edutradex.types.UTCDateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table("competitions") as batch_op:
        batch_op.drop_column("reminder_sent_at")
