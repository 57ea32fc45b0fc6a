"""`flask seed`: what `make run` seeds on a laptop, and what a deploy's `release` seeds."""

from __future__ import annotations

import os

import pytest
import requests
from sqlalchemy import create_engine, text

from edutradex.market.service import DEFAULT_MARKETS
from edutradex.types import utcnow
from tests.support.deploy import production_env, run_release
from tests.support.live import LiveServer
from tests.support.waiting import wait_for


def live_quote(server: LiveServer, symbol: str) -> dict | None:
    response = requests.get(f"{server.url}/api/markets/{symbol}/quote", timeout=5)
    assert response.status_code == 200, response.text
    quote = response.json()
    return quote if quote["status"] == "live" else None


def test_seed_creates_the_laptop_admin_and_the_markets(runner, app):
    from edutradex.auth.models import User
    from edutradex.extensions import db
    from edutradex.market.models import Market

    result = runner.invoke(args=["seed"])
    assert "Password (shown only this once)" in result.output
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(User.id))) == 1
        assert db.session.scalar(db.select(db.func.count(Market.id))) == len(DEFAULT_MARKETS)


def test_seed_publishes_the_sample_competitions_once_and_the_reference_seed_none(runner, app):
    from edutradex.competitions.models import Competition
    from edutradex.extensions import db

    for args in (["seed", "--reference"], ["seed", "--no-samples"]):  # a deploy's release; the live-server tests
        result = runner.invoke(args=args)
        assert result.exit_code == 0 and "Competitions" not in result.output
        with app.app_context():
            assert db.session.scalar(db.select(db.func.count(Competition.id))) == 0
    first = runner.invoke(args=["seed"])
    second = runner.invoke(args=["seed"])
    assert first.exit_code == second.exit_code == 0
    assert "Daily CFD Sprint, Rise/Fall Hour" in first.output and "Competitions" not in second.output
    with app.app_context():
        samples = db.session.execute(db.select(Competition.kind, Competition.status, Competition.entry_fee,
                                               Competition.repeats, Competition.start_at)
                                     .order_by(Competition.id)).all()
        assert [(kind, status, fee, repeats) for kind, status, fee, repeats, _ in samples] == [
            ("CFD", "SCHEDULED", 0, "DAILY"), ("RISE_FALL", "SCHEDULED", 0, "DAILY")]
        assert all(start > utcnow() for *_, start in samples)  # registration open, trading soon


def test_reference_seed_creates_no_user(runner, app):
    from edutradex.auth.models import User
    from edutradex.extensions import db
    from edutradex.market.models import Market

    first = runner.invoke(args=["seed", "--reference"])
    second = runner.invoke(args=["seed", "--reference"])
    assert first.exit_code == second.exit_code == 0
    assert "Markets: added" in first.output and "all defaults present" in second.output
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(User.id))) == 0
        assert db.session.scalar(db.select(db.func.count(Market.id))) == len(DEFAULT_MARKETS)


@pytest.mark.postgres
@pytest.mark.slow
def test_release_on_a_fresh_postgres_database_gives_a_working_catalogue(postgres_url, tmp_path):
    env = {**{k: v for k, v in os.environ.items() if k != "REDIS_URL"}, **production_env(postgres_url)}
    run_release(env)
    second = run_release(env)  # every deploy runs it again
    assert "all defaults present" in second.stdout

    engine = create_engine(postgres_url)
    with engine.connect() as conn:
        symbols = set(conn.execute(text("SELECT symbol FROM markets")).scalars())
        users = conn.execute(text("SELECT count(*) FROM users")).scalar()
    engine.dispose()
    assert symbols == {m.symbol for m in DEFAULT_MARKETS}
    assert users == 0

    # the one web dyno (PostgreSQL only: it is the price authority) serves prices
    server = LiveServer(tmp_path / "web", **production_env(postgres_url))
    try:
        server.start()
        quote = wait_for(lambda: live_quote(server, "OTC_EUR_USD"), message="a live OTC_EUR_USD quote")
        assert quote["symbol"] == "OTC_EUR_USD" and quote["mid"]
    finally:
        server.stop()


def test_create_admin_makes_the_first_admin(runner, app):
    from edutradex.auth import service as auth_service

    result = runner.invoke(args=["create-admin", "owner@example.com"])
    assert result.exit_code == 0 and "Password (shown once)" in result.output
    with app.app_context():
        assert auth_service.admin_exists()

