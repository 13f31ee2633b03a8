"""The recipients' portal end to end (Django test client, real relay sink, PostgreSQL).

A PHI-bearing campaign under ``portal_only`` goes through the real send pipeline; the
notice and the code e-mails are read from what the aiosmtpd relay received.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
from django.test import Client
from django.utils import timezone

from campaigns.models import Message
from luxmail import org, roles
from luxmail.models import AuditEvent
from luxmail.testing import verify_session
from portal import services
from portal.models import PortalCode, PortalMessage, PortalReply, PortalSession
from portal.tests.helpers import (
    contains_any,
    make_patient,
    parse,
    phi_campaign,
    phi_values,
    portal_link,
    start_and_drain,
)

pytestmark = [pytest.mark.postgres, pytest.mark.smtp, pytest.mark.django_db]

CODE = re.compile(r"\b(\d{6})\b")


class Delivered:
    def __init__(self, patient, message, notice, link, sink):
        self.patient = patient
        self.message = message
        self.notice = notice
        self.link = link
        self.path = "/" + link.split("/", 3)[3]  # /portal/<token>/
        self.token = self.path.split("/")[2]
        self.sink = sink
        self.portal_message = PortalMessage.objects.get(message=message)

    def last_code(self) -> str:
        data = self.sink.messages[-1].data
        body = parse(data).get_body(("plain",))
        assert body is not None
        return CODE.findall(body.get_content())[0]


def deliver(admin, sink, *, address: str | None = None) -> Delivered:
    patient = make_patient(address or f"p.{uuid.uuid4().hex[:8]}@example.test", actor=admin)
    campaign = phi_campaign([patient], actor=admin, policy="portal_only")
    before = len(sink.messages)
    start_and_drain(campaign, actor=admin)
    message = Message.objects.get(campaign=campaign)
    assert message.channel == "portal" and message.state == "sent"
    notice = sink.messages[before].data
    return Delivered(patient, message, notice, portal_link(notice), sink)


@pytest.fixture
def delivered(postgres, sink, admin) -> Delivered:
    return deliver(admin, sink)


def open_session(client: Client, item: Delivered) -> None:
    assert client.post(item.path + "code/").status_code == 302
    response = client.post(item.path + "verify/", {"code": item.last_code()})
    assert response.status_code == 302 and response["Location"].endswith("/read/")


def test_walkthrough_code_read_reply_all_audited(delivered, admin, sink, settings):
    client = Client()
    visited: list[str] = []

    start = client.get(delivered.path)
    visited.append(delivered.path)
    assert start.status_code == 200
    assert b"E-mail me a code" in start.content
    assert org.get_settings().name.encode() in start.content
    csp = start["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "img-src 'self' data:" in csp
    assert start["Referrer-Policy"] == "same-origin"
    assert "no-store" in start["Cache-Control"]

    sent = client.post(delivered.path + "code/")
    assert sent.status_code == 302
    visited.append(sent["Location"])
    code_mail = sink.messages[-1].data
    assert parse(code_mail)["To"] == sink.messages[-1].rcpt_tos[0]
    verify = client.get(sent["Location"])
    assert b"We sent a 6-digit code" in verify.content
    opened = client.post(delivered.path + "verify/", {"code": delivered.last_code()})
    assert opened.status_code == 302
    visited.append(opened["Location"])
    cookie = client.cookies["lm_portal"]
    assert (
        cookie["path"] == delivered.path and cookie["httponly"] and cookie["samesite"] == "Strict"
    )

    page = client.get(opened["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    assert "Your follow-up with Dr. Octavia Marsh" in html  # subject
    assert "E11.9" in html and "Available until" in html
    assert "style-src-attr 'unsafe-inline'" in page["Content-Security-Policy"]

    replied = client.post(delivered.path + "reply/", {"body": "Can we move it to Friday?"})
    assert replied.status_code == 302
    visited.append(replied["Location"])
    reply = PortalReply.objects.get(portal_message=delivered.portal_message)
    assert b"Friday" not in bytes(reply.body)  # stored encrypted
    assert "Can we move it to Friday?" in client.get(replied["Location"]).content.decode()

    # The sender identity's reply-to gets a notice without PHI or the reply text.
    before = len(sink.messages)
    assert services.portal_reply_notify(reply_id=reply.pk)
    notice = sink.messages[before]
    assert notice.rcpt_tos == [
        delivered.message.campaign.sender.reply_to or delivered.message.campaign.sender.from_email
    ]
    assert contains_any(notice.data, [*phi_values(delivered.patient), "Friday"]) == []

    # Nothing sent to the recipient, and no URL, names any of their PHI or the address.
    phi = phi_values(delivered.patient)
    for data in (delivered.notice, code_mail):
        assert contains_any(data, phi) == []
    address = sink.messages[0].rcpt_tos[0]
    for url in visited:
        assert contains_any(url, [*phi, address, address.split("@")[0]]) == []

    actions = list(
        AuditEvent.objects.filter(target_id=str(delivered.portal_message.uuid))
        .order_by("id")
        .values_list("action", flat=True)
    )
    for expected in (
        "portal.create",
        "portal.code_sent",
        "portal.verified",
        "portal.view",
        "portal.reply",
        "portal.reply_notified",
    ):
        assert expected in actions
    details = AuditEvent.objects.filter(action__startswith="portal.").values_list(
        "details", flat=True
    )
    for entry in details:
        assert contains_any(str(entry), [*phi, address]) == []
    delivered.portal_message.refresh_from_db()
    assert delivered.portal_message.read_count >= 1 and delivered.portal_message.first_read_at


def test_five_wrong_codes_lock_that_message(delivered, admin, sink):
    other = deliver(admin, sink)
    client = Client()
    assert client.post(delivered.path + "code/").status_code == 302
    right = delivered.last_code()
    wrong = "000000" if right != "000000" else "111111"
    for remaining in (4, 3, 2, 1):
        response = client.post(delivered.path + "verify/", {"code": wrong})
        assert response.status_code == 400
        assert f"{remaining} attempt" in response.content.decode()
    locked = client.post(delivered.path + "verify/", {"code": wrong})
    assert locked.status_code == 403 and b"Access is locked" in locked.content
    # Even the right code no longer opens it, and no content is shown anywhere.
    again = client.post(delivered.path + "verify/", {"code": right})
    assert again.status_code == 403
    assert b"Octavia" not in again.content
    assert client.get(delivered.path + "read/").status_code == 403
    assert client.post(delivered.path + "code/").status_code == 403
    assert AuditEvent.objects.filter(action="portal.locked").count() == 1
    assert AuditEvent.objects.filter(action="portal.verify_failed").count() == 5
    # Only that message: the other one still opens.
    open_session(client, other)
    assert client.get(other.path + "read/").status_code == 200
    # Staff unlock after confirming identity; a new code then works.
    services.portal_message_unlock(portal_message=delivered.portal_message, actor=admin)
    client2 = Client()
    open_session(client2, delivered)
    assert client2.get(delivered.path + "read/").status_code == 200


def test_codes_are_single_use(delivered):
    client = Client()
    assert client.post(delivered.path + "code/").status_code == 302
    code = delivered.last_code()
    assert client.post(delivered.path + "verify/", {"code": code}).status_code == 302
    assert client.post(delivered.path + "sign-out/").status_code == 200
    second = Client()
    reused = second.post(delivered.path + "verify/", {"code": code})
    assert reused.status_code == 400 and b"no valid code" in reused.content
    assert second.get(delivered.path + "read/").status_code == 302  # back to the start
    hashes = list(PortalCode.objects.values_list("code_hash", flat=True))
    assert all(code.encode() not in bytes(h) for h in hashes)  # stored hashed


def test_a_token_opens_only_its_own_message(delivered, admin, sink):
    other = deliver(admin, sink)
    client = Client()
    open_session(client, delivered)
    # The session cookie of one message is worth nothing on another.
    client.cookies["lm_portal"] = client.cookies["lm_portal"].value
    response = client.get(other.path + "read/")
    assert response.status_code == 302 and response["Location"].endswith(other.path)
    # A code of one message does not verify another.
    assert client.post(other.path + "code/").status_code == 302
    other_code = other.last_code()
    assert client.post(delivered.path + "code/").status_code in (302, 429)
    own = delivered.last_code()
    if own != other_code:
        assert client.post(other.path + "verify/", {"code": own}).status_code == 400
    # A made-up or truncated token finds nothing.
    assert client.get("/portal/" + "A" * 43 + "/").status_code == 404
    assert client.get(delivered.path[:-5] + "/").status_code == 404


@pytest.mark.parametrize("how", ["expired", "revoked"])
def test_expired_or_revoked_shows_a_clear_page_and_no_content(delivered, admin, how):
    client = Client()
    open_session(client, delivered)
    if how == "expired":
        PortalMessage.objects.filter(pk=delivered.portal_message.pk).update(
            expires_at=timezone.now() - dt.timedelta(minutes=1)
        )
        heading = b"This message has expired"
    else:
        staff = Client()
        verify_session(staff, admin)
        response = staff.post(f"/secure-messages/{delivered.portal_message.uuid}/revoke/")
        assert response.status_code == 302
        heading = b"This message was withdrawn"
    for url in ("", "read/", "verify/"):
        page = client.get(delivered.path + url)
        assert page.status_code == 410 and heading in page.content
        assert contains_any(page.content, phi_values(delivered.patient)) == []
    assert client.post(delivered.path + "reply/", {"body": "hello"}).status_code == 410
    assert (
        not PortalSession.objects.filter(
            portal_message=delivered.portal_message, ended_at__isnull=True
        ).exists()
        or how == "expired"
    )


def test_sessions_idle_out_after_ten_minutes(delivered):
    client = Client()
    open_session(client, delivered)
    assert client.get(delivered.path + "read/").status_code == 200
    PortalSession.objects.filter(portal_message=delivered.portal_message).update(
        last_seen_at=timezone.now() - dt.timedelta(minutes=11)
    )
    response = client.get(delivered.path + "read/")
    assert response.status_code == 302
    start = client.get(response["Location"])
    assert b"signed out after a few minutes" in start.content
    assert AuditEvent.objects.filter(action="portal.session_idle").exists()


def test_code_requests_are_rate_limited(delivered):
    client = Client()
    assert client.post(delivered.path + "code/").status_code == 302
    again = client.post(delivered.path + "code/")
    assert again.status_code == 429 and b"seconds" in again.content
    assert PortalCode.objects.filter(portal_message=delivered.portal_message).count() == 1


def test_birth_date_check_when_the_org_requires_it(delivered, admin):
    org.org_settings_update(actor=admin, portal_require_dob=True)
    client = Client()
    assert client.post(delivered.path + "code/").status_code == 302
    code = delivered.last_code()
    form = client.get(delivered.path + "verify/")
    assert b"date of birth" in form.content
    wrong = client.post(delivered.path + "verify/", {"code": code, "birth_date": "1970-01-01"})
    assert wrong.status_code == 400 and b"date of birth is not correct" in wrong.content
    right = client.post(delivered.path + "verify/", {"code": code, "birth_date": "1961-04-09"})
    assert right.status_code == 302
    failed = AuditEvent.objects.get(action="portal.verify_failed")
    assert failed.details["reason"] == "birth_date"


def test_read_page_shows_sanitized_html_only(postgres, sink, admin):
    portal_message = services.portal_message_create(
        message_id=None,
        campaign_id=None,
        contact_id=None,
        sender_id=None,
        recipient_email="x@example.test",
        subject="Hi",
        html=(
            '<p style="color:#123456;position:fixed" onclick="steal()">Visible</p>'
            '<script>alert(1)</script><img src="https://tracker.example/p.gif" alt="logo">'
            '<a href="javascript:alert(1)">bad</a><iframe src="https://x.example"></iframe>'
        ),
        text="Hi",
        expiry_days=30,
    )
    token = services.link_token(portal_message)
    client = Client()
    assert client.post(f"/portal/{token}/code/").status_code == 302
    code = CODE.findall(parse(sink.messages[-1].data).get_body(("plain",)).get_content())[0]
    assert client.post(f"/portal/{token}/verify/", {"code": code}).status_code == 302
    html = client.get(f"/portal/{token}/read/").content.decode()
    body = html.split('aria-label="Message">', 1)[1].split("</section>", 1)[0]
    assert "Visible" in body and 'style="color:#123456"' in body
    for forbidden in ("<script", "onclick", "tracker.example", "javascript:", "<iframe", "fixed"):
        assert forbidden not in body


def test_staff_see_portal_messages_and_only_phi_roles_read_replies(delivered, staff_client):
    client = Client()
    open_session(client, delivered)
    client.post(delivered.path + "reply/", {"body": "Please call me back."})
    reply = PortalReply.objects.get()

    marketer = staff_client(roles.MARKETER)
    listing = marketer.get("/secure-messages/")
    assert listing.status_code == 200 and b"#%d" % delivered.portal_message.pk in listing.content
    assert marketer.get("/secure-messages/replies/").status_code == 200
    assert marketer.get(f"/secure-messages/replies/{reply.uuid}/").status_code == 403
    detail = marketer.get(f"/secure-messages/{delivered.portal_message.uuid}/?show=1")
    assert b"Octavia" not in detail.content

    phi = staff_client(roles.PHI_MARKETER)
    page = phi.get(f"/secure-messages/replies/{reply.uuid}/")
    assert page.status_code == 200 and b"Please call me back." in page.content
    event = AuditEvent.objects.filter(action="phi.access").order_by("-id").first()
    assert event is not None and event.details["purpose"] == "portal.reply_read"
    reply.refresh_from_db()
    assert reply.staff_read_at is not None
    shown = phi.get(f"/secure-messages/{delivered.portal_message.uuid}/?show=1")
    assert b"Octavia" in shown.content


def test_staff_pages_are_behind_the_mfa_gate(delivered, make_user):
    user = make_user(roles.ADMIN)
    client = Client()
    client.force_login(user)  # password only, no second factor
    response = client.get("/secure-messages/")
    assert response.status_code == 302 and "/accounts/mfa/" in response["Location"]


def test_reads_and_replies_reach_reporting(delivered, admin, django_capture_on_commit_callbacks):
    from portal import reporting_hook
    from reporting import services as reporting_services
    from reporting.models import WebhookDelivery

    reporting_services.webhook_endpoint_create(
        name="CRM",
        url="https://crm.example/hook",
        event_types=["portal_read", "portal_reply"],
        actor=admin,
    )
    client = Client()
    open_session(client, delivered)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.get(delivered.path + "read/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        client.get(delivered.path + "read/")  # a second read: no second portal_read event
    with django_capture_on_commit_callbacks(execute=False):
        client.post(delivered.path + "reply/", {"body": "Thanks"})
    kinds = sorted(WebhookDelivery.objects.values_list("event_type", flat=True))
    assert kinds == ["portal_read", "portal_reply"]
    read = WebhookDelivery.objects.get(event_type="portal_read").payload
    assert read["data"]["message_id"] == delivered.message.pk
    assert read["data"]["classification"]["reason"] == "portal_verified"
    for delivery in WebhookDelivery.objects.all():
        assert contains_any(str(delivery.payload), phi_values(delivered.patient)) == []
    # The verified read is handed to reporting as a human open.
    assert reporting_hook.record_portal_open(
        message_id=delivered.message.pk,
        campaign_id=delivered.message.campaign_id,
        occurred_at=timezone.now(),
    )
