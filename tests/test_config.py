import pytest

import config
from edutradex import create_app


def test_heroku_postgres_scheme_is_accepted():
    assert config.normalise_database_url("postgres://u:p@h:5432/d") == "postgresql+psycopg2://u:p@h:5432/d"
    assert config.normalise_database_url("postgresql://u@h/d") == "postgresql+psycopg2://u@h/d"
    assert config.normalise_database_url("sqlite:///x.db") == "sqlite:///x.db"


@pytest.mark.parametrize("secret", [None, "", config.DEFAULT_SECRET, "short"])
def test_production_refuses_missing_or_default_secret(monkeypatch, secret):
    monkeypatch.setattr(config.ProductionConfig, "SECRET_KEY", secret)
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app(config.ProductionConfig)


def test_production_starts_with_a_real_secret_and_secure_cookies(monkeypatch, tmp_path):
    monkeypatch.setattr(config.ProductionConfig, "SECRET_KEY", "x" * 40)
    monkeypatch.setattr(config.ProductionConfig, "KYC_ENCRYPTION_KEY", "A" * 43 + "=")
    monkeypatch.setattr(config.ProductionConfig, "SQLALCHEMY_DATABASE_URI", f"sqlite:///{tmp_path / 'p.db'}")
    app = create_app(config.ProductionConfig)
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["REMEMBER_COOKIE_SECURE"] is True


def test_unknown_environment_name_is_a_clear_error():
    with pytest.raises(RuntimeError, match="EDUTRADEX_ENV"):
        config.get_config("staging")


def test_development_default_is_embedded(monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert config.DevelopmentConfig.SQLALCHEMY_DATABASE_URI.startswith("sqlite:///")
    assert "instance" in config.DevelopmentConfig.SQLALCHEMY_DATABASE_URI
