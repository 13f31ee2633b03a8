"""Break-glass PHI access (issue 17 §6): a written justification opens time-limited
PHI access at once, Admins are told (in the app and by mail), every PHI access in the
window is flagged in the audit trail, and the grant expires or is revoked."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.utils import timezone
from django.utils.html import escape

from luxmail import audit, breakglass, crypto, roles
from luxmail.models import AuditEvent, BreakGlassGrant, User
from luxmail.testing import free_port, verify_session

pytestmark = pytest.mark.django_db

WHY = "ED physician on call needs the patient's contact history for a recall"


def _fresh(user):
    # has_perm caches per user object (one request); re-read as a new request would.
    return User.objects.get(pk=user.pk)


def test_a_grant_opens_phi_access_and_flags_every_phi_event(
    make_user, django_capture_on_commit_callbacks
):
    admin = make_user(roles.ADMIN)
    marketer = make_user(roles.MARKETER)
    assert not marketer.has_perm("luxmail.view_phi")
    with django_capture_on_commit_callbacks(execute=True):
        grant = breakglass.break_glass_request(user=marketer, justification=WHY, minutes=30)
    assert _fresh(marketer).has_perm("luxmail.view_phi")
    assert not _fresh(marketer).has_perm("luxmail.export_phi")
    # Admins are told by mail, without the justification.
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [admin.email]
    assert WHY not in mail.outbox[0].body and "/staff/break-glass/" in mail.outbox[0].body
    assert list(breakglass.grants_unacknowledged()) == [grant]

    crypto.phi_access(actor=marketer, purpose="contact.view_phi")
    flagged = AuditEvent.objects.filter(action="phi.access", actor_id=marketer.pk).get()
    assert flagged.details["break_glass"] == grant.pk
    # An Admin's own PHI access is not flagged, nor non-PHI events of the user.
    crypto.phi_access(actor=admin, purpose="contact.view_phi")
    assert (
        "break_glass"
        not in AuditEvent.objects.filter(actor_id=admin.pk).order_by("id").last().details
    )
    audit.record("campaign.view", actor=marketer)
    assert "break_glass" not in AuditEvent.objects.filter(action="campaign.view").get().details
    # The chain still verifies with the extra key.
    assert audit.verify(write_checkpoint=False).ok

    with time_machine.travel(timezone.now() + timedelta(minutes=31)):
        assert not _fresh(marketer).has_perm("luxmail.view_phi")
        crypto.phi_access(actor=marketer, purpose="contact.view_phi")
        assert (
            "break_glass"
            not in AuditEvent.objects.filter(action="phi.access").order_by("id").last().details
        )
        assert breakglass.break_glass_expire() == 1
        assert breakglass.break_glass_expire() == 0  # audited once
    assert AuditEvent.objects.filter(action="breakglass.expire").count() == 1


def test_revocation_ends_access_at_once(make_user):
    admin = make_user(roles.ADMIN)
    viewer = make_user(roles.VIEWER)
    grant = breakglass.break_glass_request(user=viewer, justification=WHY, minutes=60)
    assert breakglass.break_glass_revoke(grant=grant, actor=admin)
    assert not _fresh(viewer).has_perm("luxmail.view_phi")
    assert not breakglass.break_glass_revoke(grant=grant, actor=admin)
    assert AuditEvent.objects.filter(action="breakglass.revoke").count() == 1


@pytest.mark.parametrize(
    ("justification", "minutes", "message"),
    [("help", 30, "at least"), (WHY, 1, "between"), (WHY, 100_000, "between")],
)
def test_bad_requests_are_explained(make_user, justification, minutes, message):
    user = make_user(roles.MARKETER)
    with pytest.raises(breakglass.BreakGlassError, match=message):
        breakglass.break_glass_request(user=user, justification=justification, minutes=minutes)


def test_phi_roles_and_open_grants_cannot_ask_again(make_user):
    with pytest.raises(breakglass.BreakGlassError, match="already"):
        breakglass.break_glass_request(
            user=make_user(roles.PHI_MARKETER), justification=WHY, minutes=30
        )
    user = make_user(roles.MARKETER)
    breakglass.break_glass_request(user=user, justification=WHY, minutes=30)
    with pytest.raises(breakglass.BreakGlassError, match="already have"):
        breakglass.break_glass_request(user=user, justification=WHY, minutes=30)


def test_request_page_and_admin_notice(make_user):
    admin = make_user(roles.ADMIN)
    user = make_user(roles.MARKETER)
    client = Client()
    verify_session(client, user)
    page = client.post(
        "/staff/break-glass/request/", {"justification": "x" * 5000, "minutes": "30"}
    )
    assert page.status_code == 200 and not BreakGlassGrant.objects.exists()
    response = client.post(
        "/staff/break-glass/request/", {"justification": WHY, "minutes": "30"}, follow=True
    )
    assert "break-glass-open" in response.content.decode()
    grant = BreakGlassGrant.objects.get()
    manager = Client()
    verify_session(manager, admin)
    dashboard = manager.get("/").content.decode()
    assert "break-glass-notice" in dashboard
    review = manager.get("/staff/break-glass/").content.decode()
    assert escape(WHY) in review
    manager.post(f"/staff/break-glass/{grant.uuid}/", {"action": "acknowledge"})
    assert "break-glass-notice" not in manager.get("/").content.decode()
    manager.post(f"/staff/break-glass/{grant.uuid}/", {"action": "revoke"})
    assert BreakGlassGrant.objects.get().revoked_by == admin
    # Only Admins review.
    assert client.get("/staff/break-glass/").status_code == 403


def test_a_relay_failure_does_not_block_the_emergency(
    make_user, settings, django_capture_on_commit_callbacks
):
    make_user(roles.ADMIN)
    settings.EMAIL_BACKEND = "luxmail.mail.RelayEmailBackend"
    settings.LUXMAIL_SMTP_HOST = "127.0.0.1"
    settings.LUXMAIL_SMTP_PORT = free_port()
    settings.LUXMAIL_SMTP_SECURITY = "none"
    user = make_user(roles.MARKETER)
    with django_capture_on_commit_callbacks(execute=True):
        breakglass.break_glass_request(user=user, justification=WHY, minutes=15)
    assert _fresh(user).has_perm("luxmail.view_phi")
    assert breakglass.grants_unacknowledged().count() == 1  # the in-app notice remains
