"""`flask db upgrade` builds the schema on SQLite and PostgreSQL, and the migrations match
the models (no pending autogenerate diff)."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade
from sqlalchemy import inspect

from config import TestingConfig
from edutradex import create_app
from edutradex.extensions import db


def _upgrade_and_diff(url):
    app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=url)
    with app.app_context():
        upgrade()
        tables = set(inspect(db.engine).get_table_names())
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), db.metadata)
        db.engine.dispose()
    return tables, diff


def test_upgrade_on_sqlite_matches_models(tmp_path):
    tables, diff = _upgrade_and_diff(f"sqlite:///{tmp_path / 'm.db'}")
    assert "users" in tables and "alembic_version" in tables
    assert diff == [], f"models and migrations differ: run `flask db migrate`: {diff}"


@pytest.mark.postgres
def test_upgrade_on_postgres_matches_models(postgres_url):
    tables, diff = _upgrade_and_diff(postgres_url)
    assert "users" in tables
    assert diff == [], f"models and migrations differ: {diff}"


def test_the_withdrawable_part_of_existing_wallets_leaves_out_their_demo_deposits(tmp_path):
    """0004_guards: a wallet of 80.00 that took 50.00 through the demo provider (and 30.00
    otherwise) may pay out 30.00; one whose demo deposits exceed its balance, nothing."""
    from sqlalchemy import select, text

    from edutradex.wallet.models import Wallet

    app = create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'w.db'}")
    with app.app_context():
        upgrade(revision="0003")
        with db.engine.begin() as conn:  # SQLite stores money as integer cents
            for user_id, balance_cents in ((1, 8000), (2, 1000)):
                conn.execute(text(
                    "INSERT INTO users (id, email, name, password_hash, role, active, demo_balance, session_nonce, "
                    "created_at) VALUES (:id, :email, 'U', 'x', 'USER', 1, 0, 'n', 0)"), {"id": user_id, "email": f"u{user_id}@x"})
                conn.execute(text(
                    "INSERT INTO wallets (user_id, balance, total_deposited, total_withdrawn, total_spent_competitions, "
                    "total_won_competitions, withdrawals_enabled, created_at) VALUES (:id, :b, 0, 0, 0, 0, 1, 0)"),
                    {"id": user_id, "b": balance_cents})
                conn.execute(text(
                    "INSERT INTO deposits (user_id, amount, currency, provider, status, created_at) "
                    "VALUES (:id, 5000, 'EUR', 'demo', 'completed', 0)"), {"id": user_id})
            conn.execute(text("INSERT INTO deposits (user_id, amount, currency, provider, status, created_at) "
                              "VALUES (1, 9900, 'EUR', 'demo', 'failed', 0)"))
        upgrade()
        rows = db.session.execute(select(Wallet.user_id, Wallet.withdrawable_balance).order_by(Wallet.user_id)).all()
        assert [(u, str(w)) for u, w in rows] == [(1, "30.00"), (2, "0.00")]
        db.session.remove()
        db.engine.dispose()
