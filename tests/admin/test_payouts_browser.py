"""An admin pays withdrawals from a real browser against the app as a real process: a
payout batch from the approved withdrawals, its SEPA file downloaded, marked sent — at
desktop and phone sizes."""

import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from tests.support.live import ROOT, LiveServer
from tests.wallet.conftest import DEBTOR

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "correct-horse-1"
IBAN = "NL91ABNA0417164300"
SETUP = f"""
from decimal import Decimal
from edutradex import create_app
from edutradex.auth import service
from edutradex.wallet import kyc, withdrawals
from edutradex.wallet.service import adjust_credits as service_adjust
app = create_app()
with app.app_context():
    service.create_admin("boss@example.com", "The Boss", "{PASSWORD}")
    checker, _ = service.create_admin("checker@example.com", "The Checker", "{PASSWORD}")
    user = service.register_user("Tara Target", "target@example.com", "{PASSWORD}")
    service_adjust(user.id, Decimal("100.00"), "Test funds", checker.id)
    sub = kyc.submit_kyc(user.id, "Tara Target", "1990-04-01", "NL", "Damrak 1, Amsterdam", "NX1234567")
    kyc.approve_kyc(sub.id, checker.id)
    withdrawals.save_bank_account(user.id, "{IBAN}", "Tara Target")
    w = withdrawals.request_withdrawal(user.id, Decimal("42.50"))
    withdrawals.approve_withdrawal(w.id, checker.id)
"""


@pytest.fixture
def server(tmp_path):
    live = LiveServer(tmp_path / "live", **DEBTOR).prepare()
    done = subprocess.run([sys.executable, "-c", SETUP], cwd=ROOT, env=live.env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    live.start()
    yield live
    live.stop()


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 800}, {"width": 390, "height": 844}],
                         ids=["desktop", "phone"])
def test_admin_pays_a_batch_from_the_browser(server, browser, tmp_path, viewport):
    context = browser.new_context(viewport=viewport, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15000)
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(server.url + "/login")
        page.get_by_label("Email").fill("boss@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(server.url + "/")

        page.goto(server.url + "/admin/payouts")
        assert "1 approved withdrawal(s) waiting, 42.50 EUR" in page.get_by_test_id("payouts-waiting").inner_text()
        page.locator("summary", has_text="Create batch").click()
        page.get_by_role("button", name="Yes, create batch").click()
        page.wait_for_url("**/admin/payouts/1")
        assert page.get_by_test_id("batch-status").inner_text() == "open"
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")  # no sideways scroll

        with page.expect_download() as download_info:
            page.get_by_test_id("batch-download").click()
        path = tmp_path / "batch.xml"
        download_info.value.save_as(path)
        ns = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"}
        root = ET.parse(path).getroot()
        assert root.findtext(".//p:CdtTrfTxInf/p:CdtrAcct/p:Id/p:IBAN", namespaces=ns) == IBAN
        assert root.findtext(".//p:GrpHdr/p:CtrlSum", namespaces=ns) == "42.50"

        page.locator("summary", has_text="Mark sent").click()
        page.get_by_label("The bank's reference for the upload").fill("PORTAL-UPLOAD-9")
        page.get_by_role("button", name="Yes, mark sent").click()
        page.wait_for_function("() => document.querySelector('[data-testid=batch-status]').innerText === 'sent'")
        assert "PORTAL-UPLOAD-9" in page.content()
        assert errors == []
    finally:
        context.close()
