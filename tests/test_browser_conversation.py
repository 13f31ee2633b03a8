"""A staff answer with an attachment that the patient reads in the portal (issue 20,
"done when"): the patient replies, a PHI Marketer sees it in Conversations (and the
bell), answers with a PDF; the patient follows the "new secure message" e-mail, reads
the whole thread and downloads the file.

Screenshots: ``var/screenshots/conversation-*.png``.
"""

from __future__ import annotations

import re
import uuid

import pytest

from campaigns.tests.conftest import admin, postgres, sink  # noqa: F401
from luxmail import roles
from luxmail.testing import screenshot, sign_in
from portal.tests.helpers import (
    contains_any,
    make_patient,
    parse,
    phi_campaign,
    phi_values,
    portal_link,
    start_and_drain,
)
from portal.tests.test_attachments import PDF

pytestmark = [pytest.mark.browser, pytest.mark.smtp, pytest.mark.django_db(transaction=True)]


def _code(received) -> str:
    body = parse(received.messages[-1].data).get_body(("plain",))
    assert body is not None
    return re.findall(r"\b(\d{6})\b", body.get_content())[0]


def _open(page, path, received) -> None:
    page.goto(path)
    page.get_by_role("button", name="E-mail me a code").click()
    page.wait_for_url("**/verify/?sent=1")
    page.get_by_label("6-digit code").fill(_code(received))
    page.get_by_role("button", name="Open the message").click()
    page.wait_for_url("**/read/")


def test_staff_answer_with_attachment_read_by_the_patient(
    browser_page,
    live_server,
    sink,  # noqa: F811  (the fixture imported above)
    admin,  # noqa: F811
    make_user,
    settings,
) -> None:
    settings.LUXMAIL_CLAMAV_ADDRESS = ""
    patient_page = browser_page
    staff_context = patient_page.context.browser.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 900}
    )
    staff_page = staff_context.new_page()
    staff_page.set_default_timeout(15_000)
    patient = make_patient(f"conv.{uuid.uuid4().hex[:8]}@example.test", actor=admin)
    start_and_drain(phi_campaign([patient], actor=admin, policy="portal_only"), actor=admin)
    path = "/" + portal_link(sink.messages[0].data).split("/", 3)[3]

    # 1. The patient replies in the portal.
    _open(patient_page, path, sink)
    patient_page.get_by_label("Your reply").fill("Should I fast before the blood test?")
    patient_page.get_by_role("button", name="Send reply").click()
    patient_page.wait_for_url("**/read/?replied=1")

    # 2. Staff see it in Conversations and answer with a PDF.
    sign_in(staff_page, make_user(roles.PHI_MARKETER), "/secure-messages/conversations/")
    assert staff_page.get_by_test_id("notifications-link").inner_text().strip() != "Notifications"
    staff_page.get_by_role("link", name="Open conversation").click()
    staff_page.get_by_text("Should I fast before the blood test?").wait_for()
    staff_page.get_by_label("Your answer").fill("Yes: nothing to eat after midnight.")
    staff_page.get_by_label("Attach files (optional)").set_input_files(
        [{"name": "fasting-guide.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    before = len(sink.messages)
    staff_page.get_by_role("button", name="Send answer").click()
    staff_page.get_by_text("Your answer is in the portal").wait_for()
    staff_page.get_by_role("link", name="fasting-guide.pdf").wait_for()
    screenshot(staff_page, "conversation-1-staff")

    # 3. The e-mail says only that a message waits; its link opens the thread.
    notice = sink.messages[before].data
    assert contains_any(notice, [*phi_values(patient), "midnight", "fast", "blood"]) == []
    assert "/" + portal_link(notice).split("/", 3)[3] == path
    patient_page.goto(path + "read/")
    entries = patient_page.get_by_test_id("thread-entry")
    assert entries.count() == 2
    assert "Should I fast" in entries.nth(0).inner_text()
    assert "nothing to eat after midnight" in entries.nth(1).inner_text()
    screenshot(patient_page, "conversation-2-patient")
    with patient_page.expect_download() as download_info:
        patient_page.get_by_role("link", name="fasting-guide.pdf").click()
    download = download_info.value
    assert download.suggested_filename == "fasting-guide.pdf"
    with open(download.path(), "rb") as received:
        assert received.read() == PDF
    staff_context.close()
