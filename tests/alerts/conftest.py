"""Alert fixtures: seeded markets, recorded ticks as the feed records them, the authority's
latest quote, alerts written as the service writes them (in bulk), and a fresh engine."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import insert, select

from edutradex.alerts import listener
from edutradex.alerts.listener import AlertEngine
from edutradex.alerts.models import AlertFire, PriceAlert
from edutradex.extensions import db
from edutradex.market import quotes, store
from edutradex.market.models import Tick
from edutradex.market.quotes import Quote
from edutradex.market.service import seed_markets
from edutradex.types import utcnow
from tests.support.quotes import fresh_quotes  # noqa: F401 - autouse: no quote outlives a test

D = Decimal
EUR = "OTC_EUR_USD"
HALF_SPREAD = D("0.00005")


class Ticks:
    """Records ticks (by mid) in the tick store as the feed does, each 100 ms after the last,
    and publishes each as the latest quote."""

    def __init__(self):
        self.ts_ms = quotes.now_ms() + 1000

    def __call__(self, symbol: str, mid: str) -> store.TickRow:
        self.ts_ms += 100
        m = D(mid)
        row = store.TickRow(store.reserve_tick_ids(1)[0], symbol, self.ts_ms, m - HALF_SPREAD, m + HALF_SPREAD, m,
                            "TEST")
        with db.engine.begin() as conn:
            conn.execute(insert(Tick), [row.as_params()])
        quotes.publish_quote(Quote(symbol, row.bid, row.ask, m, row.id, row.ts_ms, "TEST"))
        return row


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_app(request):
    """The same test on the embedded default (SQLite) and on PostgreSQL."""
    return request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")


@pytest.fixture
def record(app):
    with app.app_context():
        seed_markets()
    return Ticks()


@pytest.fixture
def announced(monkeypatch):
    """What the engine announces on the owners' rooms: (fire id, user id, message)."""
    sent: list[tuple[int, int, str]] = []
    real = listener.announce

    def capture(fire):
        sent.append((fire.fire_id, fire.user_id, fire.message))
        real(fire)

    monkeypatch.setattr(listener, "announce", capture)
    return sent


def started(app) -> AlertEngine:
    """A fresh engine (as after a restart), the app's own, holding the authority."""
    engine = app.extensions["alert_engine"] = AlertEngine(app)
    engine.on_authority(True)
    assert engine.active
    return engine


def bulk_alerts(user_id: int, specs: list[tuple[str, str, str, bool]], after_tick: int) -> list[int]:
    """(kind, level, watching, repeat) rows written as create_alert writes them, in one insert."""
    created = utcnow() - timedelta(seconds=1)
    rows = [{"user_id": user_id, "symbol": EUR, "kind": kind, "level": D(level), "repeat": repeat,
             "watching": watching, "status": "ACTIVE", "created_price": D("1.08500"), "created_at": created,
             "fire_count": 0, "last_tick_id": after_tick, "version": 1} for kind, level, watching, repeat in specs]
    ids = list(db.session.scalars(insert(PriceAlert).returning(PriceAlert.id, sort_by_parameter_order=True), rows))
    db.session.commit()
    return ids


def fires(alert_id: int | None = None) -> list[AlertFire]:
    db.session.expire_all()
    query = select(AlertFire).order_by(AlertFire.id)
    if alert_id is not None:
        query = query.where(AlertFire.alert_id == alert_id)
    result = list(db.session.scalars(query))
    db.session.rollback()
    return result


def alert(alert_id: int) -> PriceAlert:
    db.session.expire_all()
    return db.session.get(PriceAlert, alert_id)
