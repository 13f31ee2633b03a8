"""Admin for the campaigns app: read-only. Every change goes through the audited
services and the campaigns UI; private keys (DKIM, signing) are never shown (not even as
ciphertext), message rows show ids, states and SMTP outcomes only.
"""

from __future__ import annotations

from django.contrib import admin

from campaigns.models import (
    ABTest,
    ABVariant,
    BounceEvent,
    Campaign,
    CampaignApproval,
    DeliveryPlan,
    DeliveryProof,
    EditorBlock,
    EmailTemplate,
    EvidenceKey,
    FeedbackPolicy,
    Message,
    OrgSigningKey,
    PresendOverride,
    SendChain,
    SenderEvent,
    SenderIdentity,
    UnparsedFeedback,
)
from luxmail.admin_site import ReadOnlyAdmin


@admin.register(EmailTemplate)
class EmailTemplateAdmin(ReadOnlyAdmin):
    list_display = ("name", "phi_bearing", "has_locked_footer", "version", "updated_at")
    search_fields = ("name",)
    exclude = ("editor_project",)  # the editor's design JSON: large, and not for reading


@admin.register(EditorBlock)
class EditorBlockAdmin(ReadOnlyAdmin):
    list_display = ("name", "created_by", "created_at")
    search_fields = ("name",)


@admin.register(SenderIdentity)
class SenderIdentityAdmin(ReadOnlyAdmin):
    list_display = ("name", "from_email", "dkim_domain", "dkim_selector", "allow_without_dkim")
    exclude = ("dkim_private_key",)


@admin.register(OrgSigningKey)
class OrgSigningKeyAdmin(ReadOnlyAdmin):
    list_display = ("kind", "fingerprint", "expires_at", "created_at")
    exclude = ("private_key", "passphrase")


@admin.register(Campaign)
class CampaignAdmin(ReadOnlyAdmin):
    list_display = ("name", "status", "recipients", "started_at", "finished_at")
    list_filter = ("status",)
    search_fields = ("name", "marketing_id")


@admin.register(ABTest)
class ABTestAdmin(ReadOnlyAdmin):
    list_display = ("campaign", "state", "metric", "test_percent", "winner", "decided_at")
    list_filter = ("state",)


@admin.register(ABVariant)
class ABVariantAdmin(ReadOnlyAdmin):
    list_display = ("test", "label", "campaign", "recipients", "send_at")


@admin.register(DeliveryPlan)
class DeliveryPlanAdmin(ReadOnlyAdmin):
    list_display = ("campaign", "local_date", "local_time", "respect_quiet_hours")


@admin.register(CampaignApproval)
class CampaignApprovalAdmin(ReadOnlyAdmin):
    list_display = ("campaign", "state", "requested_by", "decided_by", "requested_at")
    list_filter = ("state",)


@admin.register(PresendOverride)
class PresendOverrideAdmin(ReadOnlyAdmin):
    list_display = ("campaign", "items", "created_by", "created_at")
    raw_id_fields = ("campaign",)


@admin.register(SendChain)
class SendChainAdmin(ReadOnlyAdmin):
    # Which dispatch chains hold which slots: what an operator looks at when a campaign
    # seems stalled (a slot whose lease expired is taken over by the recovery sweep).
    list_display = ("campaign", "slot", "token", "lease_until")
    raw_id_fields = ("campaign",)


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = ("id", "campaign", "contact_id", "state", "attempts", "smtp_code", "finished_at")
    list_filter = ("state",)
    raw_id_fields = ("campaign", "contact")
    show_full_result_count = False


@admin.register(BounceEvent)
class BounceEventAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "kind",
        "reason",
        "status",
        "provider",
        "source",
        "suppressed",
        "received_at",
    )
    list_filter = ("kind", "scope", "reason", "source")
    raw_id_fields = ("message", "contact", "campaign")


@admin.register(SenderEvent)
class SenderEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "reason", "provider", "sending_domain", "received_at")
    list_filter = ("kind", "reason")
    raw_id_fields = ("campaign",)


@admin.register(UnparsedFeedback)
class UnparsedFeedbackAdmin(ReadOnlyAdmin):
    # The body stays encrypted; reprocess from Campaigns → Deliverability.
    list_display = ("id", "state", "size", "received_count", "last_received_at", "attempts")
    list_filter = ("state",)
    exclude = ("body",)


@admin.register(FeedbackPolicy)
class FeedbackPolicyAdmin(ReadOnlyAdmin):
    list_display = ("id", "soft_bounce_limit", "soft_bounce_days", "updated_at")


@admin.register(DeliveryProof)
class DeliveryProofAdmin(ReadOnlyAdmin):
    list_display = ("message_id", "host", "tls_version", "cert_verified", "replied_at")
    raw_id_fields = ("message",)
    show_full_result_count = False


@admin.register(EvidenceKey)
class EvidenceKeyAdmin(ReadOnlyAdmin):
    list_display = ("fingerprint", "created_at", "retired_at")
    exclude = ("private_key",)


# Journeys (campaigns/journeys/), read-only like the rest.
from campaigns.journeys.admin import register as _register_journeys  # noqa: E402

_register_journeys(ReadOnlyAdmin)
