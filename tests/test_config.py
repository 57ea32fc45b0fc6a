import pytest

import config
from edutradex import create_app
from edutradex.wallet.providers import stripe_enabled


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
    monkeypatch.setattr(config.ProductionConfig, "PAYMENTS_PROVIDER", "demo")
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


def production(monkeypatch, tmp_path, **settings):
    monkeypatch.setattr(config.ProductionConfig, "SECRET_KEY", "x" * 40)
    monkeypatch.setattr(config.ProductionConfig, "KYC_ENCRYPTION_KEY", "A" * 43 + "=")
    monkeypatch.setattr(config.ProductionConfig, "SQLALCHEMY_DATABASE_URI", f"sqlite:///{tmp_path / 'p.db'}")
    for name, value in settings.items():
        monkeypatch.setattr(config.ProductionConfig, name, value)


@pytest.mark.parametrize("provider", [None, "stripe"])
def test_production_refuses_to_start_without_stripe_keys(monkeypatch, tmp_path, provider):
    production(monkeypatch, tmp_path, PAYMENTS_PROVIDER=provider, STRIPE_SECRET_KEY=None,
               STRIPE_PUBLISHABLE_KEY=None, STRIPE_WEBHOOK_SECRET=None)
    with pytest.raises(RuntimeError, match="STRIPE_SECRET_KEY.*missing.*PAYMENTS_PROVIDER=demo"):
        create_app(config.ProductionConfig)
    production(monkeypatch, tmp_path, PAYMENTS_PROVIDER="paypal")
    with pytest.raises(RuntimeError, match="PAYMENTS_PROVIDER='paypal'"):
        create_app(config.ProductionConfig)


def test_production_runs_the_demo_provider_only_when_chosen(monkeypatch, tmp_path):
    production(monkeypatch, tmp_path, PAYMENTS_PROVIDER="demo", STRIPE_SECRET_KEY="sk_live_x",
               STRIPE_PUBLISHABLE_KEY="pk_live_x", STRIPE_WEBHOOK_SECRET="whsec_x")
    app = create_app(config.ProductionConfig)
    with app.app_context():
        assert not stripe_enabled()  # chosen on purpose: demo even with keys present
    production(monkeypatch, tmp_path, PAYMENTS_PROVIDER=None)
    app = create_app(config.ProductionConfig)
    with app.app_context():
        assert stripe_enabled()
