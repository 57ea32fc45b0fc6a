"""The Markets page and the chart page."""

from __future__ import annotations

from decimal import Decimal

from edutradex.market import quotes


def test_markets_page_lists_active_markets_with_status(seeded, client):
    with seeded.app_context():
        quotes.publish_quote(quotes.Quote("OTC_GOLD", Decimal("2049.85"), Decimal("2050.15"), Decimal("2050.00"),
                                          None, quotes.now_ms(), "SIM"))
    html = client.get("/markets").get_data(as_text=True)
    assert 'data-symbol="OTC_GOLD"' in html and "2049.85" in html
    assert 'data-symbol="EUR_USD"' in html and "Unavailable" in html
    assert "market-chart.js" in html and "<script>" not in html  # CSP: no inline scripts
    assert 'style="' not in html


def test_markets_page_filter_by_type(seeded, client):
    html = client.get("/markets?type=SYNTHETIC").get_data(as_text=True)
    rows = [line for line in html.splitlines() if 'class="market-row"' in line]
    assert len(rows) == 13
    hidden = [line for line in html.split('<tr class="market-row"')[1:] if "hidden" in line.split(">")[0]]
    assert len(hidden) == 9


def test_chart_page(seeded, client):
    response = client.get("/markets/VOLATILITY_25?resolution=5s")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="market-chart"' in html and 'data-resolution="5s"' in html and 'data-precision="3"' in html
    for res in ("1s", "5s", "1m", "5m", "15m", "30m", "1h", "4h", "1d"):
        assert f'data-resolution="{res}"' in html
    assert "lightweight-charts.standalone.production.js" in html


def test_chart_page_for_an_unknown_market_is_404(seeded, client):
    response = client.get("/markets/NOPE")
    assert response.status_code == 404
    assert "Unknown market" in response.get_data(as_text=True)
