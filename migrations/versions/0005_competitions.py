"""Competitions: the competition with its locked terms and status, and each participant
with their competition account. Prize pools are platform accounts (no new table).

Revision ID: 0005_competitions
Revises: 0004_guards
"""

import sqlalchemy as sa
from alembic import op

import edutradex.types

revision = "0005_competitions"
down_revision = "0004_guards"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('competitions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('slug', sa.String(length=80), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('entry_fee', edutradex.types.ScaledDecimal(precision=18, scale=2), nullable=False),
    sa.Column('starting_capital', edutradex.types.ScaledDecimal(precision=18, scale=2), nullable=False),
    sa.Column('min_participants', sa.Integer(), nullable=False),
    sa.Column('max_participants', sa.Integer(), nullable=False),
    sa.Column('seats_taken', sa.Integer(), nullable=False),
    sa.Column('has_had_entrants', sa.Boolean(), nullable=False),
    sa.Column('registration_opens_at', edutradex.types.UTCDateTime(), nullable=False),
    sa.Column('registration_closes_at', edutradex.types.UTCDateTime(), nullable=False),
    sa.Column('start_at', edutradex.types.UTCDateTime(), nullable=False),
    sa.Column('end_at', edutradex.types.UTCDateTime(), nullable=False),
    sa.Column('allowed_markets', sa.JSON(), nullable=False),
    sa.Column('max_leverage', sa.JSON(), nullable=False),
    sa.Column('stop_out_percent', edutradex.types.ScaledDecimal(precision=7, scale=2), nullable=False),
    sa.Column('margin_call_percent', edutradex.types.ScaledDecimal(precision=7, scale=2), nullable=False),
    sa.Column('platform_fee_percent', edutradex.types.ScaledDecimal(precision=7, scale=2), nullable=False),
    sa.Column('prize_table', sa.JSON(), nullable=False),
    sa.Column('guaranteed_pool', edutradex.types.ScaledDecimal(precision=18, scale=2), nullable=False),
    sa.Column('prize_requires_trade', sa.Boolean(), nullable=False),
    sa.Column('rebuys_allowed', sa.Boolean(), nullable=False),
    sa.Column('max_rebuys', sa.Integer(), nullable=False),
    sa.Column('rebuy_fee', edutradex.types.ScaledDecimal(precision=18, scale=2), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', edutradex.types.UTCDateTime(), nullable=False),
    sa.Column('updated_at', edutradex.types.UTCDateTime(), nullable=False),
    sa.Column('published_at', edutradex.types.UTCDateTime(), nullable=True),
    sa.Column('started_at', edutradex.types.UTCDateTime(), nullable=True),
    sa.Column('ended_at', edutradex.types.UTCDateTime(), nullable=True),
    sa.Column('settled_at', edutradex.types.UTCDateTime(), nullable=True),
    sa.Column('cancelled_at', edutradex.types.UTCDateTime(), nullable=True),
    sa.Column('cancel_reason', sa.String(length=255), nullable=True),
    sa.Column('pool_at_settlement', edutradex.types.ScaledDecimal(precision=18, scale=2), nullable=True),
    sa.Column('platform_fee_amount', edutradex.types.ScaledDecimal(precision=18, scale=2), nullable=True),
    sa.Column('net_pool', edutradex.types.ScaledDecimal(precision=18, scale=2), nullable=True),
    sa.Column('guarantee_topup', edutradex.types.ScaledDecimal(precision=18, scale=2), nullable=True),
    sa.Column('prizes_paid', edutradex.types.ScaledDecimal(precision=18, scale=2), nullable=True),
    sa.Column('leftover_to_platform', edutradex.types.ScaledDecimal(precision=18, scale=2), nullable=True),
    sa.CheckConstraint('end_at > start_at', name='ck_competitions_times'),
    sa.CheckConstraint('entry_fee >= 0', name='ck_competitions_entry_fee'),
    sa.CheckConstraint('guaranteed_pool >= 0 AND rebuy_fee >= 0', name='ck_competitions_amounts'),
    sa.CheckConstraint('min_participants >= 1 AND max_participants >= min_participants', name='ck_competitions_participants'),
    sa.CheckConstraint('seats_taken >= 0 AND seats_taken <= max_participants', name='ck_competitions_seats'),
    sa.CheckConstraint('starting_capital > 0', name='ck_competitions_starting_capital'),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('slug')
    )
    with op.batch_alter_table('competitions', schema=None) as batch_op:
        batch_op.create_index('ix_competitions_status_start_at', ['status', 'start_at'], unique=False)

    op.create_table('competition_participants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('competition_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('entry_number', sa.Integer(), nullable=False),
    sa.Column('joined_at', edutradex.types.UTCDateTime(), nullable=False),
    sa.Column('left_at', edutradex.types.UTCDateTime(), nullable=True),
    sa.Column('fees_paid', edutradex.types.ScaledDecimal(precision=18, scale=2), nullable=False),
    sa.Column('cash', edutradex.types.ScaledDecimal(precision=18, scale=2), nullable=False),
    sa.Column('equity', edutradex.types.ScaledDecimal(precision=18, scale=2), nullable=False),
    sa.Column('trades_count', sa.Integer(), nullable=False),
    sa.Column('rebuys', sa.Integer(), nullable=False),
    sa.Column('disqualified', sa.Boolean(), nullable=False),
    sa.Column('disqualify_reason', sa.String(length=500), nullable=True),
    sa.Column('disqualified_at', edutradex.types.UTCDateTime(), nullable=True),
    sa.Column('final_equity', edutradex.types.ScaledDecimal(precision=18, scale=2), nullable=True),
    sa.Column('final_rank', sa.Integer(), nullable=True),
    sa.Column('prize', edutradex.types.ScaledDecimal(precision=18, scale=2), nullable=True),
    sa.CheckConstraint('entry_number >= 1 AND rebuys >= 0 AND trades_count >= 0', name='ck_competition_participants_counts'),
    sa.ForeignKeyConstraint(['competition_id'], ['competitions.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('competition_id', 'user_id', name='uq_competition_participants_competition_user')
    )
    with op.batch_alter_table('competition_participants', schema=None) as batch_op:
        batch_op.create_index('ix_competition_participants_competition_equity', ['competition_id', 'equity'], unique=False)
        batch_op.create_index(batch_op.f('ix_competition_participants_user_id'), ['user_id'], unique=False)



def downgrade():
    with op.batch_alter_table('competition_participants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_competition_participants_user_id'))
        batch_op.drop_index('ix_competition_participants_competition_equity')

    op.drop_table('competition_participants')
    with op.batch_alter_table('competitions', schema=None) as batch_op:
        batch_op.drop_index('ix_competitions_status_start_at')

    op.drop_table('competitions')
