"""Rise/fall trades in RISE_FALL competitions: a trade names its account
(``participant_id``: NULL = the demo balance, else the competition participant whose
account the stake came from and the payout goes back to).

Revision ID: 0008_risefall
Revises: 0007_cfd
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_risefall"
down_revision = "0007_cfd"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("trades") as batch_op:
        batch_op.add_column(sa.Column("participant_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_trades_participant_id", "competition_participants", ["participant_id"], ["id"],
                                    ondelete="CASCADE")
        batch_op.create_index("ix_trades_participant_status", ["participant_id", "status"], unique=False)


def downgrade():
    with op.batch_alter_table("trades") as batch_op:
        batch_op.drop_index("ix_trades_participant_status")
        batch_op.drop_constraint("fk_trades_participant_id", type_="foreignkey")
        batch_op.drop_column("participant_id")
