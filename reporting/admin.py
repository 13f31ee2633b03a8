"""Admin: proxy/gateway ranges are edited here; webhooks (managed in Settings) and report
schedules (managed in Reports → Schedules) are read-only."""

from __future__ import annotations

import ipaddress
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from luxmail.admin_site import ReadOnlyAdmin
from reporting import selectors, services
from reporting.models import (
    ProxyRange,
    ProxyRangeList,
    ReportSchedule,
    WebhookDelivery,
    WebhookEndpoint,
)


@admin.register(ProxyRange)
class ProxyRangeAdmin(admin.ModelAdmin):
    list_display = (
        "cidr",
        "scope",
        "kind",
        "provider",
        "label",
        "source",
        "list_refreshed",
        "active",
        "updated_at",
    )
    list_filter = ("active", "scope", "kind", "source", "provider")
    search_fields = ("cidr", "provider", "label")
    search_help_text = (
        "Search by CIDR, provider or label — or enter an IP address to find its range."
    )
    readonly_fields = ("created_at", "updated_at")
    fields = (
        "cidr",
        "scope",
        "kind",
        "provider",
        "label",
        "source",
        "active",
        "created_at",
        "updated_at",
    )
    actions = ("activate", "deactivate")
    list_per_page = 100

    def get_queryset(self, request: HttpRequest) -> QuerySet[ProxyRange]:
        return selectors.proxy_ranges_with_list_date(super().get_queryset(request))

    @admin.display(description="List refreshed", ordering="list_refreshed")
    def list_refreshed(self, obj: ProxyRange) -> str:
        """When this row's list was last loaded (``proxy_ranges_refresh`` / load)."""
        refreshed = getattr(obj, "list_refreshed", None)
        return f"{refreshed:%Y-%m-%d %H:%M}" if refreshed else "—"

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[ProxyRange], search_term: str
    ) -> tuple[QuerySet[ProxyRange], bool]:
        term = search_term.strip()
        try:
            ipaddress.ip_address(term)
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
        match = selectors.proxy_range_match(ip=term)
        return queryset.filter(cidr=match.cidr if match else "-"), False

    def save_model(self, request: HttpRequest, obj: ProxyRange, form: Any, change: bool) -> None:
        services.proxy_range_save(proxy_range=obj, actor=request.user, request=request)

    def delete_model(self, request: HttpRequest, obj: ProxyRange) -> None:
        services.proxy_ranges_delete(
            ranges=ProxyRange.objects.filter(pk=obj.pk), actor=request.user, request=request
        )

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ProxyRange]) -> None:
        services.proxy_ranges_delete(ranges=queryset, actor=request.user, request=request)

    @admin.action(description="Activate selected ranges")
    def activate(self, request: HttpRequest, queryset: QuerySet[ProxyRange]) -> None:
        changed = services.proxy_ranges_set_active(
            ranges=queryset, active=True, actor=request.user, request=request
        )
        self.message_user(request, f"{changed} range(s) activated.", messages.SUCCESS)

    @admin.action(description="Deactivate selected ranges (kept across reloads)")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[ProxyRange]) -> None:
        changed = services.proxy_ranges_set_active(
            ranges=queryset, active=False, actor=request.user, request=request
        )
        self.message_user(request, f"{changed} range(s) deactivated.", messages.SUCCESS)


@admin.register(ProxyRangeList)
class ProxyRangeListAdmin(ReadOnlyAdmin):
    """The loaded range lists and their dates (written by the load/refresh commands)."""

    list_display = ("source", "refreshed_at", "published", "ranges", "location")


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdmin):
    list_display = (
        "name",
        "url",
        "active",
        "disabled_reason",
        "consecutive_failures",
        "last_success_at",
    )
    list_filter = ("active", "disabled_reason")
    # The signing secrets never appear in the admin.
    exclude = ("secret", "previous_secret")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "endpoint", "event_type", "status", "attempts", "response_code")
    list_filter = ("status", "event_type")
    list_select_related = ("endpoint",)


@admin.register(ReportSchedule)
class ReportScheduleAdmin(ReadOnlyAdmin):
    """Scheduled report e-mails: who set them up, when they run next, the last send and
    error. Read-only: schedules are created and deleted on Reports → Schedules, where the
    service checks the recipients and audits the change. Counts only, no PHI."""

    list_display = (
        "name",
        "frequency",
        "format",
        "split",
        "events",
        "recipient_count",
        "created_by",
        "created_at",
        "next_run_at",
        "last_sent_at",
        "last_error",
    )
    list_filter = ("frequency", "format", "split", "events")
    search_fields = ("name",)
    list_select_related = ("created_by",)
    fields = (
        "name",
        "frequency",
        "format",
        "split",
        "events",
        "recipients",
        "created_by",
        "created_at",
        "next_run_at",
        "last_sent_at",
        "last_error",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[ReportSchedule]:
        return selectors.report_schedules_with_recipient_count(super().get_queryset(request))

    @admin.display(description="Recipients", ordering="recipient_count")
    def recipient_count(self, obj: ReportSchedule) -> int:
        return int(getattr(obj, "recipient_count", 0))
