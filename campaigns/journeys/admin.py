"""Read-only admin for journeys (registered by ``campaigns/admin.py``). Every change
goes through the audited services and the journey builder; rows show ids and states."""

from __future__ import annotations

from django.contrib import admin

from campaigns.models import (
    Journey,
    JourneyEnrollment,
    JourneyEvent,
    JourneySeen,
    JourneyStep,
    JourneyStepCampaign,
    JourneyStepRun,
    JourneyVersion,
)


def register(read_only: type[admin.ModelAdmin]) -> None:
    @admin.register(Journey)
    class JourneyAdmin(read_only):  # type: ignore[valid-type,misc]
        list_display = ("name", "status", "current_version", "activated_at", "updated_at")
        list_filter = ("status",)
        search_fields = ("name",)

    @admin.register(JourneyVersion)
    class JourneyVersionAdmin(read_only):  # type: ignore[valid-type,misc]
        list_display = ("journey", "number", "published_at", "consent")
        raw_id_fields = ("journey",)

    @admin.register(JourneyStep)
    class JourneyStepAdmin(read_only):  # type: ignore[valid-type,misc]
        list_display = ("version", "key", "kind", "name", "next_key", "no_key")
        list_filter = ("kind",)
        raw_id_fields = ("version",)

    @admin.register(JourneyStepCampaign)
    class JourneyStepCampaignAdmin(read_only):  # type: ignore[valid-type,misc]
        list_display = ("step", "round", "campaign")
        raw_id_fields = ("step", "campaign")

    @admin.register(JourneyEnrollment)
    class JourneyEnrollmentAdmin(read_only):  # type: ignore[valid-type,misc]
        list_display = ("id", "journey", "contact_id", "state", "current_step", "next_run_at")
        list_filter = ("state", "source")
        raw_id_fields = ("journey", "version", "contact", "current_step")
        show_full_result_count = False

    @admin.register(JourneyStepRun)
    class JourneyStepRunAdmin(read_only):  # type: ignore[valid-type,misc]
        list_display = ("id", "enrollment_id", "step", "seq", "outcome", "message_id", "created_at")
        list_filter = ("outcome",)
        raw_id_fields = ("enrollment", "step", "message")
        show_full_result_count = False

    @admin.register(JourneyEvent)
    class JourneyEventAdmin(read_only):  # type: ignore[valid-type,misc]
        list_display = ("id", "journey", "name", "contact_id", "outcome", "received_at")
        list_filter = ("outcome",)
        exclude = ("key_hash",)
        raw_id_fields = ("journey", "contact", "enrollment")

    @admin.register(JourneySeen)
    class JourneySeenAdmin(read_only):  # type: ignore[valid-type,misc]
        list_display = ("id", "journey", "contact_id", "seen_at")
        raw_id_fields = ("journey", "contact")
        show_full_result_count = False
