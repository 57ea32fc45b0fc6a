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
