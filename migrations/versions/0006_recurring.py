"""Recurring competitions: ``repeats`` (DAILY / WEEKLY, a term) and ``previous_id``, the
recurring competition an instance was scheduled from (UNIQUE: the next instance is
created exactly once).

Revision ID: 0006_recurring
Revises: 0005_competitions
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_recurring"
down_revision = "0006_reminders"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("competitions") as batch_op:
        batch_op.add_column(sa.Column("repeats", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("previous_id", sa.Integer(), nullable=True))
        batch_op.create_check_constraint("ck_competitions_repeats", "repeats IS NULL OR repeats IN ('DAILY', 'WEEKLY')")
        batch_op.create_unique_constraint("uq_competitions_previous_id", ["previous_id"])
        batch_op.create_foreign_key("fk_competitions_previous_id", "competitions", ["previous_id"], ["id"],
                                    ondelete="SET NULL")


def downgrade():
    with op.batch_alter_table("competitions") as batch_op:
        batch_op.drop_constraint("fk_competitions_previous_id", type_="foreignkey")
        batch_op.drop_constraint("uq_competitions_previous_id", type_="unique")
        batch_op.drop_constraint("ck_competitions_repeats", type_="check")
        batch_op.drop_column("previous_id")
        batch_op.drop_column("repeats")
