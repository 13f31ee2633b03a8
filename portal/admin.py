"""Admin for the portal: read-only, content hidden (encrypted fields are never shown).

Revoking, unlocking and reading replies happen under Secure messages, where each
action is audited.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from luxmail.crypto import encrypted_fields
from portal.models import PortalMessage, PortalReply


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        hidden = {f.name for f in encrypted_fields(self.model)} | {"link_hash"}
        return [
            f.name
            for f in self.model._meta.concrete_fields
            if f.name not in hidden and not f.primary_key
        ]


@admin.register(PortalMessage)
class PortalMessageAdmin(_ReadOnly):
    list_display = ["id", "campaign_id", "message_id", "created_at", "expires_at", "revoked_at",
                    "locked_at", "read_count"]  # fmt: skip
    search_fields = ["id", "message__id"]


@admin.register(PortalReply)
class PortalReplyAdmin(_ReadOnly):
    list_display = ["id", "portal_message_id", "created_at", "staff_read_at"]
