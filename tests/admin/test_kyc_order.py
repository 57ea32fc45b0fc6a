"""The KYC review lists a submission's details in the order the form asks for them, not
alphabetically (as the encrypted JSON stores them)."""

from __future__ import annotations

import re

from edutradex.wallet import kyc


def test_kyc_review_lists_fields_in_form_order(app, client, admin, target_id):
    with app.app_context():
        submission = kyc.submit_kyc(target_id, "Tara Target", "1990-04-01", "DE", "Hauptstr. 1, 10115 Berlin",
                                    "C01X00T47")
        assert list(kyc.submission_details(submission.id)) == list(kyc.FORM_ORDER)
    html = client.get("/admin/kyc").get_data(as_text=True)
    item = html.split(f'data-testid="kyc-{submission.id}"')[1].split("</dl>")[0]
    labels = re.findall(r"<dt>([^<]+)</dt>", item)
    assert labels[:5] == ["Legal name", "Date of birth", "Country", "Address", "ID document number"]
