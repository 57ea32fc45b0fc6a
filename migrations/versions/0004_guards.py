"""Wallets keep the withdrawable part of their balance: credits bought through the demo
payment provider are never paid out. Existing wallets count their completed demo deposits
as spent last: withdrawable = balance - demo deposits, at least 0.

Revision ID: 0004_guards
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

import edutradex.types

revision = "0004_guards"
down_revision = "0004_payouts"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("wallets") as batch_op:
        batch_op.add_column(sa.Column("withdrawable_balance", edutradex.types.ScaledDecimal(precision=18, scale=2),
                                      server_default="0", nullable=False))
    op.execute("""
        UPDATE wallets SET withdrawable_balance = CASE WHEN balance > demo.total THEN balance - demo.total ELSE 0 END
        FROM (SELECT w.id AS wallet_id, COALESCE(SUM(d.amount), 0) AS total
              FROM wallets w LEFT JOIN deposits d
                ON d.user_id = w.user_id AND d.provider = 'demo' AND d.status = 'completed'
              GROUP BY w.id) AS demo
        WHERE demo.wallet_id = wallets.id
    """)
    with op.batch_alter_table("wallets") as batch_op:
        batch_op.create_check_constraint("ck_wallets_withdrawable_within_balance",
                                         "withdrawable_balance >= 0 AND withdrawable_balance <= balance")


def downgrade():
    with op.batch_alter_table("wallets") as batch_op:
        batch_op.drop_constraint("ck_wallets_withdrawable_within_balance", type_="check")
        batch_op.drop_column("withdrawable_balance")
