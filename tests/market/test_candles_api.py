"""Candles and quotes over HTTP, and the bad input they refuse."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import insert

from edutradex.extensions import db
from edutradex.market import candles
from edutradex.market.models import Tick

BASE_S = 1_700_000_000 - 1_700_000_000 % 86400  # a UTC midnight


def put_ticks(app, symbol, points):
    """points: (seconds after BASE_S, mid) -> ticks with a 1-unit spread."""
    with app.app_context():
        db.session.execute(insert(Tick), [
            {"symbol": symbol, "ts_ms": (BASE_S + s) * 1000 + 1, "bid": Decimal(m) - 1, "ask": Decimal(m) + 1,
             "mid": Decimal(m), "source": "SIM"} for s, m in points])
        db.session.commit()


def get(client, symbol="VOLATILITY_10", **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return client.get(f"/api/markets/{symbol}/candles?{query}")


def test_sub_minute_candles_come_from_the_ticks(seeded, client):
    put_ticks(seeded, "VOLATILITY_10", [(0, "100"), (1, "102"), (3, "99"), (4, "101"), (5, "101.5"), (11, "98")])
    response = get(client, resolution="5s", **{"from": BASE_S, "to": BASE_S + 14})
    assert response.status_code == 200
    assert response.get_json() == [
        {"time": BASE_S, "open": "100.000", "high": "102.000", "low": "99.000", "close": "101.000"},
        {"time": BASE_S + 5, "open": "101.500", "high": "101.500", "low": "101.500", "close": "101.500"},
        {"time": BASE_S + 10, "open": "98.000", "high": "98.000", "low": "98.000", "close": "98.000"},
    ]
    one_second = get(client, resolution="1s", **{"from": BASE_S, "to": BASE_S + 3}).get_json()
    assert [c["time"] - BASE_S for c in one_second] == [0, 1, 3]


@pytest.mark.parametrize("resolution", ["1m", "5m", "15m", "30m", "1h", "4h", "1d"])
def test_stored_and_live_candles_agree_at_every_resolution(seeded, client, resolution):
    # ticks every 7 s over 9 hours, a saw-tooth so highs and lows are easy to check
    points = [(s, str(100 + Decimal(s % 1000) / 100)) for s in range(0, 9 * 3600, 7)]
    put_ticks(seeded, "VOLATILITY_10", points)
    seconds = candles.RESOLUTIONS[resolution]
    span = {"from": BASE_S, "to": BASE_S + 9 * 3600}
    if (9 * 3600) // seconds > 5000:
        span["to"] = BASE_S + 4999 * seconds
    from_ticks = get(client, resolution=resolution, **span).get_json()
    with seeded.app_context():
        # aggregate the first six hours; the rest stays in the live tail
        assert candles.aggregate("VOLATILITY_10", (BASE_S + 6 * 3600) * 1000 + 5000) == 6 * 60
    mixed = get(client, resolution=resolution, **span).get_json()
    assert mixed == from_ticks
    expected = candles.bars_from_ticks([((BASE_S + s) * 1000, Decimal(m)) for s, m in points], seconds)
    assert [c["time"] for c in mixed] == [b.start_s for b in expected]
    assert [Decimal(c["high"]) for c in mixed] == [b.high for b in expected]
    assert [Decimal(c["close"]) for c in mixed] == [b.close for b in expected]


def test_aggregation_is_idempotent(seeded):
    put_ticks(seeded, "VOLATILITY_10", [(s, "100") for s in range(0, 600, 5)])
    with seeded.app_context():
        now = (BASE_S + 600) * 1000 + 5000
        assert candles.aggregate("VOLATILITY_10", now) == 10
        assert candles.aggregate("VOLATILITY_10", now) == 0
        bars = candles.candles("VOLATILITY_10", 300, BASE_S, BASE_S + 600)
        assert [b.tick_count for b in bars] == [60, 60]


def test_the_quote_api(seeded, client):
    from edutradex.market import quotes

    with seeded.app_context():
        quotes.publish_quote(quotes.Quote("OTC_GOLD", Decimal("2049.85"), Decimal("2050.15"), Decimal("2050.00"),
                                          None, quotes.now_ms(), "SIM"))
    body = client.get("/api/markets/OTC_GOLD/quote").get_json()
    assert body["symbol"] == "OTC_GOLD"
    assert (body["bid"], body["ask"], body["mid"]) == ("2049.85", "2050.15", "2050.00")
    assert body["status"] == "live" and body["available"] is True and body["precision"] == 2
    waiting = client.get("/api/markets/OTC_EUR_USD/quote").get_json()
    assert waiting["available"] is False and waiting["mid"] is None


@pytest.mark.parametrize("path, message", [
    ("/api/markets/NOPE/candles?resolution=1m&from=0&to=60", "Unknown market"),
    ("/api/markets/NOPE/quote", "Unknown market"),
    ("/api/markets/OTC_GOLD/candles?resolution=2m&from=0&to=60", "Unknown resolution"),
    ("/api/markets/OTC_GOLD/candles?resolution=1m&from=120&to=60", "must not be after"),
    ("/api/markets/OTC_GOLD/candles?resolution=1s&from=0&to=86400", "at most 5000"),
    ("/api/markets/OTC_GOLD/candles?resolution=1m&from=abc&to=60", "Unix time"),
    ("/api/markets/OTC_GOLD/candles?resolution=1m&from=0&to=nan", "between 1970 and 3000"),
    ("/api/markets/OTC_GOLD/candles?resolution=1m&from=0&to=1e309", "between 1970 and 3000"),
    ("/api/markets/OTC_GOLD/candles?resolution=1m&from=-5&to=60", "between 1970 and 3000"),
    ("/api/markets/OTC_GOLD/candles?resolution=1m&to=60", "Missing 'from'"),
])
def test_bad_input_is_a_400_with_a_message(seeded, client, path, message):
    response = client.get(path)
    assert response.status_code == 400
    assert message in response.get_json()["error"]


def test_markets_list_api(seeded, client):
    body = client.get("/api/markets?type=SYNTHETIC").get_json()
    assert [m["symbol"] for m in body] == ["VOLATILITY_10", "VOLATILITY_25", "VOLATILITY_50", "VOLATILITY_100"]
    assert client.get("/api/markets?type=CRYPTO").status_code == 400
