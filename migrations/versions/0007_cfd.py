"""CFD trading in competitions: orders, positions, fills, the engine's watermark; each
market's instrument terms (contract size, lot min / step / max, quote currency and the
market converting it to USD), filled in for existing markets as instrument_defaults()
seeds them; a competition account's used margin and version.

Revision ID: 0007_cfd
Revises: 0006_recurring
"""
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

import edutradex.types


# revision identifiers, used by Alembic.
revision = '0007_cfd'
down_revision = '0006_recurring'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('cfd_engine_state',
    sa.Column('symbol', sa.String(length=32), nullable=False),
    sa.Column('last_tick_id', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', edutradex.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('symbol')
    )
    op.create_table('cfd_orders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('competition_id', sa.Integer(), nullable=False),
    sa.Column('participant_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('client_key', sa.String(length=64), nullable=False),
    sa.Column('symbol', sa.String(length=32), nullable=False),
    sa.Column('side', sa.String(length=4), nullable=False),
    sa.Column('order_type', sa.String(length=6), nullable=False),
    sa.Column('lots', edutradex.types.ScaledDecimal(precision=16, scale=4), nullable=False),
    sa.Column('price', edutradex.types.ScaledDecimal(precision=20, scale=8), nullable=True),
    sa.Column('stop_loss', edutradex.types.ScaledDecimal(precision=20, scale=8), nullable=True),
    sa.Column('take_profit', edutradex.types.ScaledDecimal(precision=20, scale=8), nullable=True),
    sa.Column('leverage', sa.Integer(), nullable=False),
    sa.Column('expires_at', edutradex.types.UTCDateTime(), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('status_reason', sa.String(length=255), nullable=True),
    sa.Column('position_id', sa.Integer(), nullable=True),
    sa.Column('created_at', edutradex.types.UTCDateTime(), nullable=False),
    sa.Column('updated_at', edutradex.types.UTCDateTime(), nullable=False),
    sa.Column('done_at', edutradex.types.UTCDateTime(), nullable=True),
    sa.CheckConstraint("side IN ('BUY', 'SELL') AND order_type IN ('MARKET', 'LIMIT', 'STOP')", name='ck_cfd_orders_kind'),
    sa.CheckConstraint('lots > 0 AND leverage >= 1', name='ck_cfd_orders_lots'),
    sa.ForeignKeyConstraint(['competition_id'], ['competitions.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['participant_id'], ['competition_participants.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('participant_id', 'client_key', name='uq_cfd_orders_participant_key')
    )
    with op.batch_alter_table('cfd_orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cfd_orders_competition_id'), ['competition_id'], unique=False)
        batch_op.create_index('ix_cfd_orders_participant_status', ['participant_id', 'status'], unique=False)
        batch_op.create_index('ix_cfd_orders_status_symbol', ['status', 'symbol'], unique=False)
        batch_op.create_index(batch_op.f('ix_cfd_orders_user_id'), ['user_id'], unique=False)

    op.create_table('cfd_positions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('competition_id', sa.Integer(), nullable=False),
    sa.Column('participant_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('symbol', sa.String(length=32), nullable=False),
    sa.Column('side', sa.String(length=4), nullable=False),
    sa.Column('lots', edutradex.types.ScaledDecimal(precision=16, scale=4), nullable=False),
    sa.Column('opened_lots', edutradex.types.ScaledDecimal(precision=16, scale=4), nullable=False),
    sa.Column('contract_size', edutradex.types.ScaledDecimal(precision=16, scale=4), nullable=False),
    sa.Column('quote_currency', sa.String(length=3), nullable=False),
    sa.Column('conversion_symbol', sa.String(length=32), nullable=True),
    sa.Column('leverage', sa.Integer(), nullable=False),
    sa.Column('margin', edutradex.types.ScaledDecimal(precision=18, scale=2), nullable=False),
    sa.Column('open_price', edutradex.types.ScaledDecimal(precision=20, scale=8), nullable=False),
    sa.Column('open_tick_id', sa.BigInteger(), nullable=True),
    sa.Column('stop_loss', edutradex.types.ScaledDecimal(precision=20, scale=8), nullable=True),
    sa.Column('take_profit', edutradex.types.ScaledDecimal(precision=20, scale=8), nullable=True),
    sa.Column('status', sa.String(length=6), nullable=False),
    sa.Column('realized_pnl', edutradex.types.ScaledDecimal(precision=18, scale=2), nullable=False),
    sa.Column('close_price', edutradex.types.ScaledDecimal(precision=20, scale=8), nullable=True),
    sa.Column('close_reason', sa.String(length=16), nullable=True),
    sa.Column('opened_at', edutradex.types.UTCDateTime(), nullable=False),
    sa.Column('closed_at', edutradex.types.UTCDateTime(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint('lots >= 0 AND opened_lots > 0 AND leverage >= 1 AND margin >= 0', name='ck_cfd_positions_amounts'),
    sa.ForeignKeyConstraint(['competition_id'], ['competitions.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['order_id'], ['cfd_orders.id'], ),
    sa.ForeignKeyConstraint(['participant_id'], ['competition_participants.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('cfd_positions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cfd_positions_competition_id'), ['competition_id'], unique=False)
        batch_op.create_index('ix_cfd_positions_participant_status', ['participant_id', 'status'], unique=False)
        batch_op.create_index('ix_cfd_positions_status_symbol', ['status', 'symbol'], unique=False)
        batch_op.create_index(batch_op.f('ix_cfd_positions_user_id'), ['user_id'], unique=False)

    op.create_table('cfd_fills',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('competition_id', sa.Integer(), nullable=False),
    sa.Column('participant_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('position_id', sa.Integer(), nullable=False),
    sa.Column('symbol', sa.String(length=32), nullable=False),
    sa.Column('action', sa.String(length=5), nullable=False),
    sa.Column('side', sa.String(length=4), nullable=False),
    sa.Column('lots', edutradex.types.ScaledDecimal(precision=16, scale=4), nullable=False),
    sa.Column('price', edutradex.types.ScaledDecimal(precision=20, scale=8), nullable=False),
    sa.Column('tick_id', sa.BigInteger(), nullable=True),
    sa.Column('tick_ts_ms', sa.BigInteger(), nullable=False),
    sa.Column('bid', edutradex.types.ScaledDecimal(precision=20, scale=8), nullable=False),
    sa.Column('ask', edutradex.types.ScaledDecimal(precision=20, scale=8), nullable=False),
    sa.Column('rule', sa.String(length=160), nullable=False),
    sa.Column('reason', sa.String(length=16), nullable=False),
    sa.Column('usd_rate', edutradex.types.ScaledDecimal(precision=20, scale=8), nullable=True),
    sa.Column('realized_pnl', edutradex.types.ScaledDecimal(precision=18, scale=2), nullable=True),
    sa.Column('created_at', edutradex.types.UTCDateTime(), nullable=False),
    sa.CheckConstraint('lots > 0', name='ck_cfd_fills_lots'),
    sa.ForeignKeyConstraint(['competition_id'], ['competitions.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['order_id'], ['cfd_orders.id'], ),
    sa.ForeignKeyConstraint(['participant_id'], ['competition_participants.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['position_id'], ['cfd_positions.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('cfd_fills', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cfd_fills_competition_id'), ['competition_id'], unique=False)
        batch_op.create_index('ix_cfd_fills_participant_id', ['participant_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_cfd_fills_position_id'), ['position_id'], unique=False)

    # New NOT NULL columns on tables with rows: added nullable, filled in through the
    # column types (money is stored scaled on SQLite), then made NOT NULL.
    with op.batch_alter_table('competition_participants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('used_margin', edutradex.types.ScaledDecimal(precision=18, scale=2), nullable=True))
        batch_op.add_column(sa.Column('version', sa.Integer(), nullable=True))
    participants = sa.table('competition_participants',
                            sa.column('used_margin', edutradex.types.ScaledDecimal(precision=18, scale=2)),
                            sa.column('version', sa.Integer()))
    op.execute(participants.update().values(used_margin=Decimal("0.00"), version=0))
    with op.batch_alter_table('competition_participants', schema=None) as batch_op:
        batch_op.alter_column('used_margin', existing_type=edutradex.types.ScaledDecimal(precision=18, scale=2),
                              nullable=False)
        batch_op.alter_column('version', existing_type=sa.Integer(), nullable=False)

    lots = edutradex.types.ScaledDecimal(precision=16, scale=4)
    with op.batch_alter_table('markets', schema=None) as batch_op:
        for name in ('contract_size', 'lot_min', 'lot_step', 'lot_max'):
            batch_op.add_column(sa.Column(name, lots, nullable=True))
        batch_op.add_column(sa.Column('quote_currency', sa.String(length=3), nullable=True))
        batch_op.add_column(sa.Column('conversion_symbol', sa.String(length=32), nullable=True))
    _seed_instrument_terms(lots)
    with op.batch_alter_table('markets', schema=None) as batch_op:
        for name in ('contract_size', 'lot_min', 'lot_step', 'lot_max'):
            batch_op.alter_column(name, existing_type=lots, nullable=False)
        batch_op.alter_column('quote_currency', existing_type=sa.String(length=3), nullable=False)
        batch_op.create_check_constraint(
            "ck_markets_instrument", "contract_size > 0 AND lot_min > 0 AND lot_step > 0 AND lot_max >= lot_min")


def _instrument_terms(symbol, market_type):
    """instrument_defaults() of edutradex/market/models.py as of this revision (a migration
    does not import the app's code, which may change later)."""
    name = symbol.upper().removeprefix("OTC_")
    if market_type == "SYNTHETIC":
        return dict(contract_size=Decimal("1"), lot_min=Decimal("0.1"), lot_step=Decimal("0.1"),
                    lot_max=Decimal("500"), quote_currency="USD", conversion_symbol=None)
    if "GOLD" in name or "XAU" in name:
        return dict(contract_size=Decimal("100"), lot_min=Decimal("0.01"), lot_step=Decimal("0.01"),
                    lot_max=Decimal("50"), quote_currency="USD", conversion_symbol=None)
    letters = "".join(c for c in name if c.isalpha())
    base, quote = (letters[:3], letters[3:6]) if len(letters) == 6 else (letters[:3], "USD")
    conversion = None if quote == "USD" else (symbol if base == "USD" else None)
    return dict(contract_size=Decimal("100000"), lot_min=Decimal("0.01"), lot_step=Decimal("0.01"),
                lot_max=Decimal("50"), quote_currency=quote, conversion_symbol=conversion)


def _seed_instrument_terms(lots):
    markets = sa.table('markets', sa.column('id', sa.Integer()), sa.column('symbol', sa.String()),
                       sa.column('market_type', sa.String()), sa.column('contract_size', lots),
                       sa.column('lot_min', lots), sa.column('lot_step', lots), sa.column('lot_max', lots),
                       sa.column('quote_currency', sa.String()), sa.column('conversion_symbol', sa.String()))
    conn = op.get_bind()
    for id_, symbol, market_type in conn.execute(sa.select(markets.c.id, markets.c.symbol, markets.c.market_type)).all():
        conn.execute(markets.update().where(markets.c.id == id_).values(**_instrument_terms(symbol, market_type)))


def downgrade():
    with op.batch_alter_table('markets', schema=None) as batch_op:
        batch_op.drop_constraint('ck_markets_instrument', type_='check')
        batch_op.drop_column('conversion_symbol')
        batch_op.drop_column('quote_currency')
        batch_op.drop_column('lot_max')
        batch_op.drop_column('lot_step')
        batch_op.drop_column('lot_min')
        batch_op.drop_column('contract_size')

    with op.batch_alter_table('competition_participants', schema=None) as batch_op:
        batch_op.drop_column('version')
        batch_op.drop_column('used_margin')

    with op.batch_alter_table('cfd_fills', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cfd_fills_position_id'))
        batch_op.drop_index('ix_cfd_fills_participant_id')
        batch_op.drop_index(batch_op.f('ix_cfd_fills_competition_id'))

    op.drop_table('cfd_fills')
    with op.batch_alter_table('cfd_positions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cfd_positions_user_id'))
        batch_op.drop_index('ix_cfd_positions_status_symbol')
        batch_op.drop_index('ix_cfd_positions_participant_status')
        batch_op.drop_index(batch_op.f('ix_cfd_positions_competition_id'))

    op.drop_table('cfd_positions')
    with op.batch_alter_table('cfd_orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cfd_orders_user_id'))
        batch_op.drop_index('ix_cfd_orders_status_symbol')
        batch_op.drop_index('ix_cfd_orders_participant_status')
        batch_op.drop_index(batch_op.f('ix_cfd_orders_competition_id'))

    op.drop_table('cfd_orders')
    op.drop_table('cfd_engine_state')
