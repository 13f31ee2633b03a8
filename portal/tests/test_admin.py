"""The admin shows portal messages, replies and contact keys read-only, without content."""

from __future__ import annotations

import pytest
from django.urls import reverse

from luxmail import roles
from portal import services

pytestmark = [pytest.mark.django_db]


def test_admin_lists_portal_rows_without_content(staff_client):
    portal_message = services.portal_message_create(
        message_id=None,
        campaign_id=None,
        contact_id=None,
        sender_id=None,
        recipient_email="hidden.person@example.test",
        subject="Results for Zebulon",
        html="<p>Zebulon's results</p>",
        text="Zebulon's results",
        expiry_days=30,
    )
    client = staff_client(roles.ADMIN, is_superuser=True)
    for name in ("portal_portalmessage", "portal_portalreply", "contacts_contactencryptionkey"):
        assert client.get(reverse(f"admin:{name}_changelist")).status_code == 200, name
    page = client.get(reverse("admin:portal_portalmessage_change", args=[portal_message.pk]))
    assert page.status_code == 200
    assert b"Zebulon" not in page.content and b"hidden.person" not in page.content
