import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from dotenv import dotenv_values

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


# ---- empty values and a forgotten EDUTRADEX_ENV --------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
SERVICE_VARIABLES = ("EDUTRADEX_ENV", "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "JOBS_MODE", "EMBEDDED_SERVICES")


def start_app(env: dict[str, str]) -> subprocess.CompletedProcess:
    """create_app() in a fresh interpreter, as `flask` or wsgi.py would build it; prints
    the settings that decide how the process runs."""
    program = ("import json; from edutradex import create_app; app = create_app(); "
               "print(json.dumps({k: app.config[k] for k in ('ENV_NAME', 'SECRET_KEY', 'SQLALCHEMY_DATABASE_URI', "
               "'EMBEDDED_SERVICES', 'JOBS_MODE', 'MAIL_OUTBOX_DIR', 'MAIL_SERVER', 'FEED_SEED', 'STRIPE_SECRET_KEY', "
               "'COMPETITIONS_OPEN')}))")
    base = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
    return subprocess.run([sys.executable, "-c", program], cwd=ROOT, env={**base, **env}, capture_output=True,
                          text=True, timeout=60)


def test_blank_values_are_unset():
    environ = {"SECRET_KEY": "", "REDIS_URL": "  ", "PORT": "5000"}
    config.unset_blank_values(environ)
    assert environ == {"PORT": "5000"}


def test_env_example_copied_to_env_starts_the_embedded_default():
    # .env.example as .env: load_dotenv sets exactly these values (it never overrides the
    # process's own), so the same values in the environment are the same start-up.
    example = {k: v or "" for k, v in dotenv_values(ROOT / ".env.example").items()}
    assert example["SECRET_KEY"] == example["DATABASE_URL"] == example["JOBS_MODE"] == example["MAIL_OUTBOX_DIR"] == ""
    result = start_app(example)
    assert result.returncode == 0, result.stderr
    settings = json.loads(result.stdout.strip().splitlines()[-1])
    assert settings["ENV_NAME"] == "development"
    assert settings["SECRET_KEY"] == config.DEFAULT_SECRET
    assert settings["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///") and "instance" in settings["SQLALCHEMY_DATABASE_URI"]
    assert settings["EMBEDDED_SERVICES"] is True and settings["JOBS_MODE"] == "thread"
    assert settings["MAIL_OUTBOX_DIR"] and settings["MAIL_SERVER"] is None
    assert settings["FEED_SEED"] is None and settings["STRIPE_SECRET_KEY"] is None
    assert settings["COMPETITIONS_OPEN"] is True  # trading inside competitions exists: open unless switched off


@pytest.mark.parametrize("services", [
    {"DATABASE_URL": "postgres://app:pw@db.example.com:5432/edutradex"},
    {"REDIS_URL": "redis://cache.example.com:6379/0"},
])
def test_a_deploy_without_edutradex_env_refuses_to_start(services):
    result = start_app({**services, "SECRET_KEY": ""})
    assert result.returncode != 0
    assert "EDUTRADEX_ENV is not set" in result.stderr
    assert "Set EDUTRADEX_ENV=production" in result.stderr


def test_development_with_services_is_allowed_when_named():
    result = start_app({"EDUTRADEX_ENV": "development", "REDIS_URL": "redis://127.0.0.1:1/0"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["ENV_NAME"] == "development"


def test_implicit_development_refused_in_process(monkeypatch):
    monkeypatch.delenv("EDUTRADEX_ENV", raising=False)
    monkeypatch.setattr(config.Config, "SQLALCHEMY_DATABASE_URI", "sqlite:///x.db")
    monkeypatch.setattr(config.Config, "REDIS_URL", "redis://cache:6379/0")
    with pytest.raises(RuntimeError, match="REDIS_URL is set"):
        config.get_config()
    monkeypatch.setattr(config.Config, "REDIS_URL", None)
    assert config.get_config() is config.DevelopmentConfig
