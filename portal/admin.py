"""Admin for the portal: read-only, content hidden (encrypted fields are never shown).

Revoking, unlocking and reading replies happen under Secure messages, where each
action is audited.
"""

from __future__ import annotations

from django.contrib import admin

from luxmail.admin_site import PlainFieldsAdmin
from portal.models import PortalMessage, PortalReply


class _ReadOnly(PlainFieldsAdmin):
    hidden_fields = ("link_hash",)


@admin.register(PortalMessage)
class PortalMessageAdmin(_ReadOnly):
    list_display = ["id", "campaign_id", "message_id", "created_at", "expires_at", "revoked_at",
                    "locked_at", "read_count"]  # fmt: skip
    search_fields = ["id", "message__id"]


@admin.register(PortalReply)
class PortalReplyAdmin(_ReadOnly):
    list_display = ["id", "portal_message_id", "created_at", "staff_read_at"]
