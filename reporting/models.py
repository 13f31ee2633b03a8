"""Reporting models: maintained proxy/gateway ranges and outbound webhooks.

Fields and constraints only; the logic lives in ``services.py`` (writes),
``selectors.py`` (reads), ``proxy_ranges.py`` (lookup index, list formats) and
``webhooks.py`` (payloads, signatures, transport).
"""

from __future__ import annotations

import ipaddress
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from luxmail.crypto import EncryptedField
from reporting.classification import AutomationKind, NetworkKind, Scope


class ProxyRange(models.Model):
    """A network whose opens/clicks are judged by who operates it (docs/tracking.md).

    ``source`` names where the row came from: ``admin`` for rows added in the admin,
    otherwise the list ``manage.py load_proxy_ranges`` loaded (``seed``,
    ``apple_egress``, or a name given with ``--source``); a reload replaces the rows
    of its source only and never touches ``active``, which stays the Admin's call.
    """

    SOURCE_ADMIN = "admin"

    cidr = models.CharField(
        max_length=49, help_text="Network in CIDR notation, e.g. 205.139.110.0/24 or 2001:db8::/32."
    )
    scope = models.CharField(
        max_length=8,
        choices=[(s.value, s.value) for s in Scope],
        default=Scope.BOTH.value,
        help_text="Which events from this network the rule applies to.",
    )
    kind = models.CharField(
        max_length=16,
        choices=[
            (NetworkKind.GATEWAY.value, "Security gateway / link scanner (automated)"),
            (NetworkKind.PRIVACY_PROXY.value, "Privacy proxy (Apple MPP)"),
            (NetworkKind.MAIL_PROXY.value, "Mail image proxy (human open, device unknown)"),
        ],
        default=NetworkKind.GATEWAY.value,
    )
    provider = models.SlugField(
        max_length=64, help_text="Short code of the operator, e.g. mimecast, apple_mpp."
    )
    label = models.CharField(max_length=200, blank=True)
    source = models.SlugField(max_length=64, default=SOURCE_ADMIN, db_index=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["source", "cidr"]
        constraints = [
            models.UniqueConstraint(fields=["source", "cidr"], name="proxyrange_source_cidr")
        ]

    def __str__(self) -> str:
        return f"{self.cidr} ({self.provider}, {self.scope})"

    def clean(self) -> None:
        try:
            network = ipaddress.ip_network(self.cidr.strip(), strict=False)
        except ValueError:
            raise ValidationError({"cidr": "Enter a network in CIDR notation."}) from None
        self.cidr = str(network)


class ProxyRangeList(models.Model):
    """When a source's range list was last loaded, and from where (docs/tracking.md).

    Written by every load (``load_proxy_ranges``, ``proxy_ranges_refresh``); shown in
    the admin next to the ranges so an Admin sees how fresh each list is.
    """

    source = models.SlugField(max_length=64, unique=True)
    refreshed_at = models.DateTimeField(help_text="When the list was last loaded.")
    location = models.CharField(
        max_length=500, blank=True, help_text="URL or file the list was loaded from."
    )
    published = models.CharField(
        max_length=40,
        blank=True,
        help_text="The date the list itself carries (e.g. the seed snapshot's), if any.",
    )
    ranges = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["source"]

    def __str__(self) -> str:
        return f"{self.source} ({self.refreshed_at:%Y-%m-%d})"


class WebhookEventType(models.TextChoices):
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    DEFERRED = "deferred", "Deferred"
    BOUNCED = "bounced", "Bounced"
    OPENED = "opened", "Opened"
    CLICKED = "clicked", "Clicked"
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
    COMPLAINED = "complained", "Complained"
    PORTAL_READ = "portal_read", "Portal read"
    PORTAL_REPLY = "portal_reply", "Portal reply"
    CAMPAIGN_AUTO_PAUSED = "campaign_auto_paused", "Campaign paused itself (sender health)"


# Sent only by "send test event"; endpoints cannot subscribe to it.
TEST_EVENT_TYPE = "test"


class WebhookEndpoint(models.Model):
    """An integration URL that receives signed JSON events (docs/api.md#webhooks)."""

    class DisabledReason(models.TextChoices):
        NONE = "", "—"
        FAILURES = "failures", "Disabled after repeated failures"
        ADMIN = "admin", "Disabled by an Admin"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100)
    url = models.URLField(max_length=2000)
    secret = EncryptedField(phi=False)
    # During a rotation the old secret signs too, until ``previous_secret_expires_at``.
    previous_secret = EncryptedField(phi=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    event_types = models.JSONField(default=list)
    active = models.BooleanField(default=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    failing_since = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(
        max_length=16, choices=DisabledReason.choices, default="", blank=True
    )
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class WebhookDelivery(models.Model):
    """One event for one endpoint, and what happened when we sent it (the delivery log).

    ``payload`` is the JSON body (ids, codes and times only — never PHI);
    ``last_error`` is our own short description of the failure, never the response body.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        RETRYING = "retrying", "Retrying"
        SUCCEEDED = "succeeded", "Delivered"
        FAILED = "failed", "Failed"

    OUTSTANDING = (Status.PENDING, Status.SENDING, Status.RETRYING)

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event_type = models.CharField(max_length=32)
    event_id = models.CharField(max_length=64, db_index=True)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="webhookdelivery_due"),
            models.Index(fields=["endpoint", "-id"], name="webhookdelivery_log"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.endpoint_id} ({self.status})"


# --- engagement tracking (docs/tracking.md) -----------------------------------------------


class TrackingOptions(models.Model):
    """Per-campaign tracking choices that the campaign model does not hold.

    ``honeypot`` adds a hidden link to every message; only machines follow it. Read
    when the campaign's links are frozen (its first message is built), like the
    template itself.
    """

    campaign = models.OneToOneField(
        "campaigns.Campaign",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="tracking_options",
    )
    honeypot = models.BooleanField(
        default=False,
        help_text="Add a hidden link to every message: whoever follows it is a machine.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "tracking options"

    def __str__(self) -> str:
        return f"Tracking options of campaign {self.campaign_id}"


class TrackedLink(models.Model):
    """A link of a campaign's frozen template that clicks are redirected to.

    Index 0 is the honeypot (no URL); real links are numbered from 1 in the order
    they first appear in the template. A click token names (message, campaign,
    index); the redirect goes only to this table's URL for that index.
    """

    HONEYPOT = 0

    campaign = models.ForeignKey(
        "campaigns.Campaign", on_delete=models.CASCADE, related_name="tracked_links"
    )
    index = models.PositiveSmallIntegerField()
    url = models.CharField(max_length=2000, blank=True)

    class Meta:
        ordering = ["campaign", "index"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "index"], name="trackedlink_campaign_index")
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}#{self.index}"


class PendingEvent(models.Model):
    """Write-ahead buffer for tracking requests when Redis cannot take them.

    The tracking endpoint inserts the raw facts here (autocommit) if ``XADD`` fails;
    the ingester classifies and stores them, deleting the row in the same transaction.
    Holds a client address until ingestion — never longer.
    """

    payload = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"pending event #{self.pk}"


class EventKind(models.TextChoices):
    OPEN = "open", "Open"
    CLICK = "click", "Click"


class EventLabel(models.TextChoices):
    HUMAN = "human", "Human"
    UNKNOWN = "unknown", "Unknown"
    PRIVACY_PROXY = "privacy_proxy", "Privacy proxy"
    AUTOMATED = "automated", "Automated"


# What kind of machine made an automated event (``Event.automation_kind``); "" = not
# automated, or a verdict that named no kind (reports show it as "other").
AUTOMATION_KIND_CHOICES = [
    (AutomationKind.SCANNER.value, "Security scanner"),
    (AutomationKind.LINK_PREVIEW.value, "Link preview"),
    (AutomationKind.CRAWLER.value, "Crawler / bot"),
    (AutomationKind.PREFETCH.value, "Prefetch"),
]
AUTOMATION_KINDS = tuple(value for value, _ in AUTOMATION_KIND_CHOICES)


class Event(models.Model):
    """One open or click, as classified (``reporting.classification.classify``).

    Every event is kept, whatever its label; reports decide what counts. The client
    address is stored truncated (``ip_prefix``: IPv4 /24, IPv6 /48) plus a keyed hash
    of the full address (``ip_hash``) so "same address" rules still work without
    keeping the address itself.
    """

    SOURCE_TRACKING = "tracking"
    SOURCE_PORTAL = "portal"

    id = models.BigAutoField(primary_key=True)
    message = models.ForeignKey(
        "campaigns.Message",
        on_delete=models.CASCADE,
        related_name="engagement_events",
        db_constraint=False,  # messages are partitioned (luxmail/partitions.py)
    )
    campaign = models.ForeignKey("campaigns.Campaign", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=8, choices=EventKind.choices)
    occurred_at = models.DateTimeField()
    link_index = models.PositiveSmallIntegerField(null=True, blank=True)
    label = models.CharField(max_length=16, choices=EventLabel.choices)
    automation_kind = models.CharField(
        max_length=16, blank=True, default="", choices=AUTOMATION_KIND_CHOICES
    )
    reason = models.CharField(max_length=40)
    detail = models.CharField(max_length=100, blank=True)
    ruleset_version = models.CharField(max_length=20)
    device_unknown = models.BooleanField(default=False)
    # "human:no_automation_signal" when a later event exposed this one as part of a sweep.
    relabeled_from = models.CharField(max_length=60, blank=True)
    method = models.CharField(max_length=8, default="GET")
    ip_prefix = models.CharField(max_length=43, blank=True)
    ip_hash = models.CharField(max_length=16, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    network = models.CharField(
        max_length=64, blank=True, help_text="Provider of the matched range."
    )
    source = models.CharField(max_length=10, default=SOURCE_TRACKING)
    # The buffer entry this event came from: ingestion is idempotent.
    source_id = models.CharField(max_length=64, unique=True)
    ingested_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["occurred_at", "id"]
        indexes = [
            models.Index(fields=["message", "occurred_at"], name="event_message_time"),
            models.Index(fields=["campaign", "occurred_at"], name="event_campaign_time"),
        ]
        permissions = [("view_report", "Can view reports and engagement events")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.label})"


# Label ranks stored in MessageStat.open_label / click_label (0 = no such event): a
# message's best event decides. A privacy proxy's fetch proves delivery to a mail client,
# which is more than a scanner's (so it ranks above automated) but less than no evidence
# either way (so below unknown: a message with an unclassified open and an MPP fetch counts
# as opened when unknown events count). Clicks never carry privacy_proxy (proxies fetch
# images, they do not follow links): reporting.ingest stores such a verdict as unknown.
LABEL_RANK = {"automated": 1, "privacy_proxy": 2, "unknown": 3, "human": 4}


class MessageStat(models.Model):
    """What one message contributes to reports; maintained by database triggers and
    the event ingester (docs/tracking.md#rollups), never by hand.

    ``hour``, ``domain`` and ``campaign`` are captured when the message is queued, so
    a contact changing address later does not move the message between report rows.
    ``state`` collapses queued/sending/deferred into ``queued``.
    """

    message = models.OneToOneField(
        "campaigns.Message",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        primary_key=True,
        related_name="report_stat",
    )
    campaign_id = models.BigIntegerField()
    hour = models.DateTimeField()
    domain = models.CharField(max_length=253)
    channel = models.CharField(max_length=16)
    state = models.CharField(max_length=12)
    open_label = models.PositiveSmallIntegerField(default=0)
    click_label = models.PositiveSmallIntegerField(default=0)
    opens_human = models.IntegerField(default=0)
    opens_unknown = models.IntegerField(default=0)
    opens_automated = models.IntegerField(default=0)
    opens_privacy_proxy = models.IntegerField(default=0, db_default=0)
    clicks_human = models.IntegerField(default=0)
    clicks_unknown = models.IntegerField(default=0)
    clicks_automated = models.IntegerField(default=0)
    # Automated events by kind (AUTOMATION_KINDS); the rest of *_automated is "other".
    opens_auto_scanner = models.IntegerField(default=0, db_default=0)
    opens_auto_link_preview = models.IntegerField(default=0, db_default=0)
    opens_auto_crawler = models.IntegerField(default=0, db_default=0)
    opens_auto_prefetch = models.IntegerField(default=0, db_default=0)
    clicks_auto_scanner = models.IntegerField(default=0, db_default=0)
    clicks_auto_link_preview = models.IntegerField(default=0, db_default=0)
    clicks_auto_crawler = models.IntegerField(default=0, db_default=0)
    clicks_auto_prefetch = models.IntegerField(default=0, db_default=0)
    unsubscribed = models.BooleanField(default=False)
    complained = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["campaign_id", "open_label"], name="messagestat_engaged")]

    def __str__(self) -> str:
        return f"stat of message {self.message_id}"


class RollupMetrics(models.Model):
    """Sums of ``MessageStat`` rows (see ``reporting/rollups.py`` for the formulas).

    ``integer`` columns: one row never counts two billion messages, and summing int4
    is several times cheaper for PostgreSQL than int8 (whose SUM is a numeric).
    """

    messages = models.IntegerField(default=0)
    queued = models.IntegerField(default=0)
    sent = models.IntegerField(default=0)
    delivered = models.IntegerField(default=0)
    failed = models.IntegerField(default=0)
    bounced = models.IntegerField(default=0)
    unknown = models.IntegerField(default=0)
    skipped = models.IntegerField(default=0)
    cancelled = models.IntegerField(default=0)
    opened_human = models.IntegerField(default=0)
    opened_unknown = models.IntegerField(default=0)
    opened_automated = models.IntegerField(default=0)
    opened_privacy_proxy = models.IntegerField(default=0)
    clicked_human = models.IntegerField(default=0)
    clicked_unknown = models.IntegerField(default=0)
    clicked_automated = models.IntegerField(default=0)
    opens_human = models.IntegerField(default=0)
    opens_unknown = models.IntegerField(default=0)
    opens_automated = models.IntegerField(default=0)
    opens_privacy_proxy = models.IntegerField(default=0)
    clicks_human = models.IntegerField(default=0)
    clicks_unknown = models.IntegerField(default=0)
    clicks_automated = models.IntegerField(default=0)
    opens_auto_scanner = models.IntegerField(default=0)
    opens_auto_link_preview = models.IntegerField(default=0)
    opens_auto_crawler = models.IntegerField(default=0)
    opens_auto_prefetch = models.IntegerField(default=0)
    clicks_auto_scanner = models.IntegerField(default=0)
    clicks_auto_link_preview = models.IntegerField(default=0)
    clicks_auto_crawler = models.IntegerField(default=0)
    clicks_auto_prefetch = models.IntegerField(default=0)
    unsubscribed = models.IntegerField(default=0)
    complained = models.IntegerField(default=0)

    class Meta:
        abstract = True


class CampaignRollup(RollupMetrics):
    """Report numbers per (hour queued, campaign, channel): every split but domain."""

    hour = models.DateTimeField()
    campaign_id = models.BigIntegerField()
    channel = models.CharField(max_length=16)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "campaign_id", "channel"], name="campaignrollup_key"
            )
        ]
        indexes = [models.Index(fields=["campaign_id", "hour"], name="campaignrollup_campaign")]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h campaign {self.campaign_id} {self.channel or '-'}"


class DomainRollup(RollupMetrics):
    """Report numbers per (hour queued, campaign, recipient domain, channel)."""

    hour = models.DateTimeField()
    campaign_id = models.BigIntegerField()
    domain = models.CharField(max_length=253)
    channel = models.CharField(max_length=16)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "campaign_id", "domain", "channel"], name="domainrollup_key"
            )
        ]
        indexes = [
            models.Index(fields=["campaign_id", "hour"], name="domainrollup_campaign"),
            models.Index(fields=["domain", "hour"], name="domainrollup_domain"),
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h campaign {self.campaign_id} {self.domain}"


class DomainMonthRollup(RollupMetrics):
    """Report numbers per (UTC month queued, recipient domain), all campaigns and
    channels: a domain split over a date range reads whole months here, then whole weeks,
    days and hours from the finer tables (``reports.range_segments``)."""

    month = models.DateTimeField()
    domain = models.CharField(max_length=253)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["month", "domain"], name="domainmonthrollup_key2")
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.domain}"


class DomainWeekRollup(RollupMetrics):
    """Report numbers per (ISO week queued, starting Monday 00:00 UTC, recipient domain)."""

    week = models.DateTimeField()
    domain = models.CharField(max_length=253)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["week", "domain"], name="domainweekrollup_key")
        ]

    def __str__(self) -> str:
        return f"week of {self.week:%Y-%m-%d} {self.domain}"


class DomainDayRollup(RollupMetrics):
    """Report numbers per (UTC day queued, recipient domain), all campaigns and channels."""

    day = models.DateTimeField()
    domain = models.CharField(max_length=253)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "domain"], name="domaindayrollup_key")
        ]

    def __str__(self) -> str:
        return f"{self.day:%Y-%m-%d} {self.domain}"


class DomainTotalRollup(RollupMetrics):
    """Report numbers per recipient domain over all time, campaigns and channels: the
    domain split without any filter reads one row per domain."""

    domain = models.CharField(max_length=253, unique=True)

    def __str__(self) -> str:
        return self.domain


class RollupJournal(RollupMetrics):
    """Changes to the report numbers not yet folded into the rollups (PostgreSQL).

    The triggers only append here (no shared row is locked, so concurrent send workers
    never wait for each other); ``rollups.fold`` moves the sums into every rollup table
    every few seconds, and reports add what is still here, so they are exact meanwhile.
    Keyed like the finest rollup; every coarser key derives from it.
    """

    id = models.BigAutoField(primary_key=True)
    hour = models.DateTimeField()
    campaign_id = models.BigIntegerField()
    domain = models.CharField(max_length=253)
    channel = models.CharField(max_length=16)

    def __str__(self) -> str:
        return f"journal #{self.pk}"


class EventRollup(models.Model):
    """Events per (hour they happened, campaign, kind, label): the activity chart."""

    hour = models.DateTimeField()
    campaign_id = models.BigIntegerField()
    kind = models.CharField(max_length=8)
    label = models.CharField(max_length=16)
    events = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "campaign_id", "kind", "label"], name="eventrollup_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h campaign {self.campaign_id} {self.kind}/{self.label}"


class ReportSchedule(models.Model):
    """A report e-mailed as an attachment to chosen staff, daily, weekly or monthly
    (``reporting/services/report_schedules.py``). Counts and rates only: the mail body
    names the schedule and the period, never a person."""

    class Frequency(models.TextChoices):
        DAILY = "daily", "Daily (yesterday)"
        WEEKLY = "weekly", "Weekly (last Monday to Sunday)"
        MONTHLY = "monthly", "Monthly (last calendar month)"

    class Format(models.TextChoices):
        PDF = "pdf", "PDF"
        XLSX = "xlsx", "XLSX"

    name = models.CharField(max_length=120)
    frequency = models.CharField(max_length=8, choices=Frequency.choices)
    format = models.CharField(max_length=4, choices=Format.choices, default=Format.PDF)
    split = models.CharField(max_length=16, default="campaign")
    events = models.CharField(max_length=8, default="human")  # the report's switch
    recipients = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    next_run_at = models.DateTimeField(db_index=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return self.name
