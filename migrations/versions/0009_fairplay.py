"""Fair play (issue #13): the devices each participant was seen on, the flags a scan raises
for the admin, and the keyed fingerprints of each KYC submission (document; name + date of
birth). Submissions made before this revision have no fingerprint: they match nobody.

Revision ID: 0009_fairplay
Revises: 0008_board
"""
import sqlalchemy as sa
from alembic import op

import edutradex.types

revision = "0009_fairplay"
down_revision = "0008_board"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "competition_devices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("competition_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("first_seen_at", edutradex.types.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", edutradex.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["competition_id"], ["competitions.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("competition_id", "user_id", "device_id", name="uq_competition_devices_seen"),
    )
    op.create_index("ix_competition_devices_competition_device", "competition_devices",
                    ["competition_id", "device_id"])
    op.create_table(
        "competition_flags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("competition_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("participants_key", sa.String(length=255), nullable=False),
        sa.Column("user_ids", sa.JSON(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decided_at", edutradex.types.UTCDateTime(), nullable=True),
        sa.Column("created_at", edutradex.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", edutradex.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["competition_id"], ["competitions.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["decided_by"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("competition_id", "kind", "participants_key", name="uq_competition_flags_key"),
    )
    op.create_index("ix_competition_flags_competition_status", "competition_flags", ["competition_id", "status"])
    with op.batch_alter_table("kyc_submissions") as batch_op:
        batch_op.add_column(sa.Column("document_fingerprint", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("person_fingerprint", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_kyc_submissions_document_fingerprint", ["document_fingerprint"])
        batch_op.create_index("ix_kyc_submissions_person_fingerprint", ["person_fingerprint"])


def downgrade():
    with op.batch_alter_table("kyc_submissions") as batch_op:
        batch_op.drop_index("ix_kyc_submissions_person_fingerprint")
        batch_op.drop_index("ix_kyc_submissions_document_fingerprint")
        batch_op.drop_column("person_fingerprint")
        batch_op.drop_column("document_fingerprint")
    op.drop_index("ix_competition_flags_competition_status", table_name="competition_flags")
    op.drop_table("competition_flags")
    op.drop_index("ix_competition_devices_competition_device", table_name="competition_devices")
    op.drop_table("competition_devices")
