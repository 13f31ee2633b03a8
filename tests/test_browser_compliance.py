"""Legal hold, delivery proof and the evidence pack in a real browser (issue 17 §1 to 3):
a Compliance Officer places a hold from the campaign page and sees its banner, opens a
message's delivery proof, downloads the evidence pack; the settings page publishes the
signing key.

Screenshots: ``var/screenshots/compliance-*.png``.
"""

from __future__ import annotations

import zipfile

import pytest

from campaigns import services
from campaigns.sending import delivery
from campaigns.tests.conftest import untrusted_tls_sink  # noqa: F401  (fixture)
from campaigns.tests.factories import make_campaign, make_contacts
from luxmail import roles
from luxmail.models import AuditEvent, LegalHold
from luxmail.testing import screenshot, sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.smtp,
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


def test_hold_proof_and_evidence_pack_in_the_browser(
    browser_page,
    untrusted_tls_sink,  # noqa: F811  (the fixture imported above)
    make_user,
    settings,
    tmp_path,
):
    settings.LUXMAIL_SMTP_CA_FILE = str(untrusted_tls_sink.cert_path)
    admin = make_user(roles.ADMIN)
    campaign = make_campaign(contact_ids=make_contacts(3), actor=admin)
    services.campaign_start(campaign=campaign, actor=admin)
    delivery.send_batch(campaign_id=campaign.pk, limit=50)
    message = campaign.messages.order_by("pk").first()
    officer = make_user(roles.COMPLIANCE_OFFICER)
    page = browser_page
    sign_in(page, officer, f"/campaigns/{campaign.pk}/")

    page.click("text=Place a legal hold on this campaign")
    page.fill("form[action$='/legal-holds/place/'] input[name=reason]", "Matter 2026-014")
    page.click("form[action$='/legal-holds/place/'] button[type=submit]")
    page.wait_for_selector("#legal-hold-banner")
    assert "Matter 2026-014" in page.inner_text("#legal-hold-banner")
    assert LegalHold.objects.filter(scope="campaign", object_id=campaign.pk).exists()
    screenshot(page, "compliance-campaign-hold")

    with page.expect_download() as download_info:
        page.click("#evidence-pack")
    target = tmp_path / "pack.zip"
    download_info.value.save_as(target)
    with zipfile.ZipFile(target) as archive:
        assert f"evidence-campaign-{campaign.pk}/MANIFEST.sig" in archive.namelist()
    assert AuditEvent.objects.filter(action="evidence.export", actor_id=officer.pk).exists()

    page.click(f"#latest-messages a[href='/campaigns/messages/{message.pk}/']")
    page.wait_for_url(f"**/campaigns/messages/{message.pk}/")
    proof = page.inner_text("#delivery-proof")
    assert "TLSv1." in proof and "yes: chain and host name checked" in proof
    screenshot(page, "compliance-message-proof")

    admin_page = page.context.new_page()
    page.context.clear_cookies()
    sign_in(admin_page, admin, "/settings/")
    assert "Evidence-pack signing key" in admin_page.inner_text("#evidence-key")
    screenshot(admin_page, "compliance-settings-key")
