"""The fairness page in a real browser, against the embedded default with 3-second periods:
from the chart to the page, a period revealed and verified, its export downloaded and
checked by tools/verify_prices.py."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.support.live import LiveServer

from .test_multiprocess import prepare_database

pytestmark = [pytest.mark.browser, pytest.mark.slow]

COMMITMENT = re.compile(r"^[0-9a-f]{64}$")
VERIFIER = Path(__file__).resolve().parents[2] / "tools" / "verify_prices.py"


@pytest.fixture
def embedded(tmp_path):
    server = LiveServer(tmp_path / "live", FEED_TICK_INTERVAL_MS="200", FAIRNESS_PERIOD_SECONDS="3",
                        CANDLE_AGGREGATE_SECONDS="1")
    prepare_database(server.env)
    server.start()
    yield server
    server.stop()


def test_fairness_page_shows_a_verified_period_whose_export_verifies(embedded, page, tmp_path):
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(embedded.url + "/markets/VOLATILITY_100")
    page.get_by_test_id("fairness-page-link").click()
    expect(page.get_by_test_id("fairness-explainer")).to_contain_text("commitment")
    expect(page.get_by_test_id("current-commitment")).to_have_text(COMMITMENT)
    deadline = time.monotonic() + 30
    while "verified" not in page.get_by_test_id("period-status").all_inner_texts()[:1] and time.monotonic() < deadline:
        page.wait_for_timeout(500)
        page.reload()
    first = page.get_by_test_id("period-row").first
    expect(first.get_by_test_id("period-status")).to_have_text("verified")
    assert len(first.get_by_test_id("revealed-seed").inner_text()) == 64
    with page.expect_download() as download:
        first.get_by_test_id("export-link").click()
    path = tmp_path / "export.json"
    download.value.save_as(path)
    result = subprocess.run([sys.executable, "-I", str(VERIFIER), str(path)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK: ")
    page.goto(embedded.url + "/markets/EUR_USD/fairness")
    expect(page.get_by_test_id("not-simulated")).to_be_visible()
    assert not errors, errors
