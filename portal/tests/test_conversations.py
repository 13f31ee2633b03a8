"""Two-way conversations: staff answer a patient in the portal with an attachment, the
patient is told without PHI and reads the thread; assignment, done, audit, refusals.

Real send pipeline, relay sink and PostgreSQL, like test_portal_flow.py.
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from luxmail import roles
from luxmail.models import AuditEvent, Notification
from portal.models import PortalAttachment, PortalMessage, PortalStaffReply
from portal.tests.helpers import contains_any, parse, phi_values, portal_link
from portal.tests.test_attachments import PDF
from portal.tests.test_portal_flow import deliver, open_session

pytestmark = [pytest.mark.postgres, pytest.mark.smtp, pytest.mark.django_db]


@pytest.fixture
def replied(postgres, sink, admin):
    item = deliver(admin, sink)
    patient = Client()
    open_session(patient, item)
    assert patient.post(item.path + "reply/", {"body": "Can I bring my glucose log?"}).status_code
    item.patient_client = patient
    return item


def answer(client, item, body="Yes, please bring it.", files=None, **extra):
    return client.post(
        f"/secure-messages/{item.portal_message.uuid}/conversation/",
        {"body": body, **({"files": files} if files is not None else {})},
        **extra,
    )


def pdf_upload(name="glucose-plan.pdf", data=PDF):
    return SimpleUploadedFile(name, data, content_type="application/pdf")


def test_staff_answer_with_attachment_reaches_the_patient_without_phi_in_mail(
    replied, sink, staff_client, django_capture_on_commit_callbacks, settings
):
    settings.LUXMAIL_CLAMAV_ADDRESS = ""  # no scanner here: the file is marked unscanned
    note = Notification.objects.get(kind="portal_reply")
    assert str(replied.portal_message.uuid) in note.link
    staff = staff_client(roles.PHI_MARKETER)
    inbox = staff.get("/secure-messages/conversations/")
    assert inbox.status_code == 200 and b"1 new" in inbox.content

    page = staff.get(f"/secure-messages/{replied.portal_message.uuid}/conversation/")
    assert page.status_code == 200 and b"Can I bring my glucose log?" in page.content
    assert b"No virus scanner is configured" in page.content
    before = len(sink.messages)
    with django_capture_on_commit_callbacks(execute=True):
        response = answer(staff, replied, files=[pdf_upload()])
    assert response.status_code == 302

    reply = PortalStaffReply.objects.get()
    attachment = PortalAttachment.objects.get()
    assert b"bring it" not in bytes(reply.body) and PDF not in bytes(attachment.content)
    assert attachment.content_type == "application/pdf" and attachment.scan == "unscanned"

    # The patient's notice: sender name and the message's own link, nothing else.
    notice = sink.messages[before]
    assert notice.rcpt_tos == sink.messages[0].rcpt_tos
    assert portal_link(notice.data) == replied.link
    assert (
        contains_any(notice.data, [*phi_values(replied.patient), "bring it", "glucose", "Octavia"])
        == []
    )
    assert "New secure message from" in parse(notice.data)["Subject"]

    # The patient reads the whole thread and downloads the file.
    thread = replied.patient_client.get(replied.path + "read/").content.decode()
    assert "Can I bring my glucose log?" in thread and "Yes, please bring it." in thread
    assert "glucose-plan.pdf" in thread and "not scanned for viruses" in thread
    download = replied.patient_client.get(f"{replied.path}attachments/{attachment.uuid}/")
    assert download.status_code == 200 and download.content == PDF
    assert download["Content-Disposition"].startswith("attachment;")
    assert download["X-Content-Type-Options"] == "nosniff"
    reply.refresh_from_db()
    assert reply.recipient_read_at is not None
    # Another browser without the portal session gets nothing.
    stranger = Client().get(f"{replied.path}attachments/{attachment.uuid}/")
    assert stranger.status_code == 302 and stranger.content == b""

    actions = set(
        AuditEvent.objects.filter(target_id=str(replied.portal_message.uuid)).values_list(
            "action", flat=True
        )
    )
    assert {"portal.staff_reply", "portal.staff_reply_notified"} <= actions
    purposes = set(
        AuditEvent.objects.filter(action="phi.access").values_list("details__purpose", flat=True)
    )
    assert {"portal.conversation_read", "portal.attachment_download", "portal.reply_notice"} <= (
        purposes
    )
    for details in AuditEvent.objects.filter(action__startswith="portal.").values_list(
        "details", flat=True
    ):
        assert contains_any(str(details), ["glucose", "bring it"]) == []


def test_assign_done_and_a_new_patient_reply_reopens(replied, staff_client, make_user):
    staff = staff_client(roles.ADMIN)
    colleague = make_user(roles.PHI_MARKETER)
    viewer = make_user(roles.VIEWER)
    base = f"/secure-messages/{replied.portal_message.uuid}"
    assert staff.post(base + "/assign/", {"assignee": colleague.pk}).status_code == 302
    replied.portal_message.refresh_from_db()
    assert replied.portal_message.assigned_to == colleague
    staff.post(base + "/assign/", {"assignee": viewer.pk})  # may not answer: refused
    replied.portal_message.refresh_from_db()
    assert replied.portal_message.assigned_to == colleague
    assert staff.post(base + "/done/", {"done": "1"}).status_code == 302
    replied.portal_message.refresh_from_db()
    assert replied.portal_message.done_at is not None
    assert (
        b"#%d" % replied.portal_message.pk
        in staff.get("/secure-messages/conversations/?show=done").content
    )
    replied.patient_client.post(replied.path + "reply/", {"body": "One more question."})
    replied.portal_message.refresh_from_db()
    assert replied.portal_message.done_at is None
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"portal.assign", "portal.done"} <= actions


def test_roles_without_phi_or_send_cannot_read_or_answer(replied, staff_client):
    marketer = staff_client(roles.MARKETER)
    url = f"/secure-messages/{replied.portal_message.uuid}/conversation/"
    assert marketer.get("/secure-messages/conversations/").status_code == 200
    assert marketer.get(url).status_code == 403
    assert answer(marketer, replied).status_code == 403
    officer = staff_client(roles.COMPLIANCE_OFFICER)
    assert officer.get(url).status_code == 403
    assert PortalStaffReply.objects.count() == 0


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("plan.pdf", b"MZ\x90\x00" + b"\x00" * 300, b"not a PDF, PNG, JPEG or plain-text"),
        ("lab\x00results.pdf", b"PK\x03\x04" + b"\x00" * 300, b"Archives"),
    ],
)
def test_hostile_uploads_get_a_clear_error_and_store_nothing(
    replied, staff_client, name, data, message
):
    staff = staff_client(roles.ADMIN)
    response = answer(staff, replied, files=[pdf_upload(name, data)])
    assert response.status_code == 400 and message in response.content
    assert PortalStaffReply.objects.count() == 0 and PortalAttachment.objects.count() == 0


def test_an_oversized_body_is_refused_before_it_is_read(replied, staff_client, settings):
    settings.LUXMAIL_PORTAL_ATTACHMENT_MAX_BYTES = 1000
    staff = staff_client(roles.ADMIN)
    response = answer(staff, replied, files=[pdf_upload(data=PDF + b"0" * 2_000_000)])
    assert response.status_code == 413 and b"Upload too large" in response.content
    # Within the body limit but over the per-file one: the service says so.
    response = answer(staff, replied, files=[pdf_upload(data=PDF + b"0" * 5000)])
    assert response.status_code == 400 and b"too large" in response.content
    assert PortalStaffReply.objects.count() == 0


def test_no_answer_to_a_revoked_message(replied, staff_client):
    PortalMessage.objects.filter(pk=replied.portal_message.pk).update(
        revoked_at=replied.portal_message.created_at
    )
    staff = staff_client(roles.ADMIN)
    response = answer(staff, replied)
    assert response.status_code == 400 and b"revoked" in response.content
