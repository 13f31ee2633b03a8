"""The event ingester: buffered tracking requests → classified, stored events.

Runs as ``reporting.ingest_tracking_events`` (Celery beat, every few seconds) and as
``manage.py ingest_tracking_events``. One run at a time (a PostgreSQL advisory lock);
each batch is one transaction that

1. takes entries from the write-ahead table (locked, deleted in the same transaction),
   the Redis stream and local spool files (removed after the commit);
2. drops what is malformed or names a message that does not exist (or not in the
   campaign its token names) — such entries are never stored;
3. skips entries already stored (``Event.source_id`` is unique: a run that died after
   its commit but before clearing the buffer cannot store an event twice);
4. classifies each event in time order with ``classification.classify`` — facts from
   the buffered request, the message (delivery time), the campaign's link plan and
   the message's events of the last ``LOOKBACK_SECONDS`` (this batch's included);
5. stores the events, relabels what a verdict ``implicates`` (``sweep_member``),
   recomputes the engagement of every touched message (which the rollup triggers
   turn into report numbers), updates the activity rollup, and queues ``opened`` /
   ``clicked`` webhooks with the classification.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F

from campaigns.models import Campaign, Message
from contacts.models import Contact
from reporting import buffer, rollups, selectors
from reporting.classification import (
    LOOKBACK_SECONDS,
    SWEEP_MEMBER,
    EventFacts,
    Kind,
    Label,
    PriorEvent,
    Verdict,
    classify,
)
from reporting.models import AUTOMATION_KINDS, Event, EventRollup, PendingEvent, TrackedLink

logger = logging.getLogger(__name__)

BATCH = 2000
MAX_USER_AGENT = 400


# --- what is stored of a verdict ---------------------------------------------------------

# Rulesets before the privacy_proxy label (2026.11.x) called a privacy proxy's fetch
# automated with these reasons; stored as privacy_proxy so reports treat every ruleset's
# events alike (migration 0010 relabelled the rows stored before).
LEGACY_PRIVACY_PROXY_REASONS = frozenset({"apple_mpp"})
# The kind of machine behind an automated verdict that names none (rulesets before
# 2026.12), by reason; a reason not listed is stored without a kind ("other").
KIND_BY_REASON = {
    "security_scanner_agent": "scanner",
    "gateway_network": "scanner",
    "click_too_soon": "scanner",
    "rapid_multi_link": "scanner",
    "all_links_clicked": "scanner",
    "multi_ip_burst": "scanner",
    "honeypot": "scanner",
    SWEEP_MEMBER: "scanner",
    "head_request": "scanner",
    "non_get_method": "scanner",
    "headless_browser_agent": "scanner",
    "image_proxy_click": "scanner",
    "link_preview_agent": "link_preview",
    "bot_agent": "crawler",
    "http_library_agent": "crawler",
    "missing_user_agent": "crawler",
    "bare_user_agent": "crawler",
    "prefetch_header": "prefetch",
    "gmail_prefetch": "prefetch",
}


def stored_label(verdict: Verdict, kind: Kind) -> tuple[str, str]:
    """``(label, automation_kind)`` to store for a verdict on an event of ``kind``.

    A click is never privacy_proxy: proxies fetch images, they do not follow links, so a
    click verdict saying so (a person behind iCloud Private Relay) is stored unknown.
    """
    label = verdict.label
    if (
        label is Label.AUTOMATED
        and kind is Kind.OPEN
        and verdict.reason in LEGACY_PRIVACY_PROXY_REASONS
    ):
        label = Label.PRIVACY_PROXY
    if label is Label.PRIVACY_PROXY and kind is Kind.CLICK:
        return Label.UNKNOWN.value, ""
    if label is not Label.AUTOMATED:
        return label.value, ""
    automation = verdict.automation_kind or KIND_BY_REASON.get(verdict.reason, "")
    return label.value, automation if automation in AUTOMATION_KINDS else ""


# --- client addresses -------------------------------------------------------------------


@cache
def _ip_key(secret: str) -> bytes:
    return hashlib.sha256(f"luxmail.reporting.ip|{secret}".encode()).digest()


def ip_hash(ip: str) -> str:
    """A keyed 64-bit hash of the full address: equal addresses, equal hashes."""
    if not ip:
        return ""
    return hmac.new(_ip_key(settings.SECRET_KEY), ip.encode(), hashlib.sha256).hexdigest()[:16]


def ip_prefix(ip: str) -> str:
    """The address truncated to its network: IPv4 /24, IPv6 /48 (what we keep)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


# --- raw entries --------------------------------------------------------------------------


@dataclass
class RawEvent:
    source_id: str
    kind: Kind
    message_id: int
    campaign_id: int
    link_index: int | None
    occurred_at: datetime
    ip: str
    user_agent: str
    method: str
    headers: dict[str, str]
    portal: bool
    order: int = 0


def parse(source_id: str, data: str, order: int = 0) -> RawEvent | None:
    """The buffered facts, or None when the entry is malformed (dropped)."""
    try:
        entry = json.loads(data)
        kind = Kind.OPEN if entry["k"] == "o" else Kind.CLICK if entry["k"] == "c" else None
        if kind is None:
            return None
        link = entry.get("l")
        headers = entry.get("h") or {}
        entry_id = entry.get("i")
        return RawEvent(
            # The entry's own id when it has one: the same entry found in two buffers
            # (Redis timed out after taking it) is one event.
            source_id=f"e:{entry_id}"[:64] if isinstance(entry_id, str) and entry_id else source_id,
            kind=kind,
            message_id=int(entry["m"]),
            campaign_id=int(entry["c"]),
            link_index=int(link) if link is not None else None,
            occurred_at=datetime.fromtimestamp(float(entry["t"]), tz=UTC),
            ip=str(entry.get("ip", ""))[:45],
            user_agent=str(entry.get("ua", "")),
            method=str(entry.get("mt", "GET"))[:8].upper(),
            headers={
                key: str(headers[key])[:100]
                for key in ("purpose", "sec_purpose", "x_moz", "x_purpose")
                if key in headers
            },
            portal=bool(entry.get("pv")),
            order=order,
        )
    except (ValueError, KeyError, TypeError, OverflowError):
        return None


# --- the run ------------------------------------------------------------------------------


@dataclass
class IngestReport:
    read: int = 0
    stored: int = 0
    duplicates: int = 0
    dropped: int = 0
    relabeled: int = 0
    webhooks: int = 0
    busy: bool = False
    by_label: dict[str, int] = field(default_factory=dict)

    def add(self, other: IngestReport) -> None:
        for name in ("read", "stored", "duplicates", "dropped", "relabeled", "webhooks"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for label, count in other.by_label.items():
            self.by_label[label] = self.by_label.get(label, 0) + count
        self.busy = self.busy or other.busy


@dataclass
class _Pending:
    raw: RawEvent
    event: Any  # reporting.models.Event (unsaved)
    temp_id: int


def _lock() -> bool:
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [rollups.INGEST_LOCK_ID])
        return bool(cursor.fetchone()[0])


def _spool_source(path_name: str, line_number: int) -> str:
    host = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
    return f"s:{host}:{path_name}:{line_number}"[:64]


def ingest_batch(*, limit: int = BATCH, include_spool: bool = True) -> IngestReport:
    """Ingest up to ``limit`` entries of each buffer in one transaction (see module doc)."""

    report = IngestReport()
    stream_ids: list[str] = []
    spool_claims: list[Any] = []
    with transaction.atomic():
        if not _lock():
            report.busy = True
            return report
        entries: list[tuple[str, str]] = []
        table_rows = list(
            PendingEvent.objects.select_for_update(skip_locked=True)
            .order_by("id")
            .values_list("id", "payload")[:limit]
        )
        entries += [(f"t:{pk}", payload) for pk, payload in table_rows]
        for entry in buffer.read_stream(limit):
            entries.append((entry.source_id, entry.data))
            stream_ids.append(entry.source_id)
        if include_spool:
            for path in buffer.spool_files():
                claimed = buffer.claim_spool_file(path)
                if claimed is None:
                    continue
                spool_claims.append(claimed[0])
                entries += [
                    (_spool_source(claimed[0].name, number), line)
                    for number, line in enumerate(claimed[1], 1)
                    if line.strip()
                ]
                if len(entries) >= 3 * limit:
                    break
        report.read = len(entries)
        if entries:
            _process(entries, report)
        if table_rows:
            PendingEvent.objects.filter(id__in=[pk for pk, _ in table_rows]).delete()
    buffer.ack_stream(stream_ids)
    for path in spool_claims:
        buffer.release_spool_file(path)
    if report.stored:
        logger.info(
            "Ingested %s tracking events (%s duplicates, %s dropped, %s relabeled)",
            report.stored,
            report.duplicates,
            report.dropped,
            report.relabeled,
        )
    return report


def ingest_entries(entries: list[tuple[str, dict[str, Any]]]) -> IngestReport:
    """Classify and store entries given directly (``source_id``, raw facts), in one
    transaction — the same path as buffered ones; an id already stored is skipped.

    For data that does not come from a request (demo data, imports of past events).
    """
    report = IngestReport(read=len(entries))
    with transaction.atomic():
        if not _lock():
            report.busy = True
            return report
        _process([(source_id, buffer.encode(entry)) for source_id, entry in entries], report)
    return report


def ingest(*, limit: int = BATCH, max_batches: int = 50) -> IngestReport:
    """Run batches until the buffers are empty (or ``max_batches``: bounded work)."""
    total = IngestReport()
    for _ in range(max_batches):
        report = ingest_batch(limit=limit)
        total.add(report)
        if report.busy or report.read < limit:
            break
    return total


def _process(entries: list[tuple[str, str]], report: IngestReport) -> None:

    parsed: list[RawEvent] = []
    for order, (source_id, data) in enumerate(entries):
        raw = parse(source_id, data, order)
        if raw is None:
            report.dropped += 1
        else:
            parsed.append(raw)
    if not parsed:
        return
    known = set(
        Event.objects.filter(source_id__in=[raw.source_id for raw in parsed]).values_list(
            "source_id", flat=True
        )
    )
    unique: list[RawEvent] = []
    for raw in parsed:
        if raw.source_id in known:
            report.duplicates += 1
        else:
            known.add(raw.source_id)
            unique.append(raw)
    parsed = unique
    messages = {
        row["id"]: row
        for row in Message.objects.filter(id__in={raw.message_id for raw in parsed}).values(
            "id", "campaign_id", "contact_id", "state", "sending_at", "finished_at"
        )
    }
    valid = [
        raw
        for raw in parsed
        if raw.message_id in messages and messages[raw.message_id]["campaign_id"] == raw.campaign_id
    ]
    report.dropped += len(parsed) - len(valid)
    if not valid:
        return
    valid.sort(key=lambda raw: (raw.occurred_at, raw.order))
    context = _Context.load(valid, messages)
    pending = _classify_all(valid, context, messages, report)
    _store(pending, context, messages, report)


@dataclass
class _Context:
    priors: dict[int, list[PriorEvent]]
    prior_rows: dict[int, Any]  # event id -> stored Event row values (for relabels)
    plans: dict[int, tuple[int, bool]]  # campaign -> (link count, has honeypot)
    relabel_db: dict[int, str] = field(default_factory=dict)  # stored id -> "label:reason"

    @classmethod
    def load(cls, valid: list[RawEvent], messages: dict[int, Any]) -> _Context:

        earliest = valid[0].occurred_at - timedelta(seconds=LOOKBACK_SECONDS)
        rows = Event.objects.filter(
            message_id__in={raw.message_id for raw in valid}, occurred_at__gte=earliest
        ).values(
            "id",
            "message_id",
            "campaign_id",
            "kind",
            "occurred_at",
            "ip_hash",
            "label",
            "reason",
            "link_index",
        )
        priors: dict[int, list[PriorEvent]] = defaultdict(list)
        prior_rows: dict[int, Any] = {}
        for row in rows.order_by("occurred_at", "id"):
            priors[row["message_id"]].append(
                PriorEvent(
                    kind=Kind(row["kind"]),
                    at=row["occurred_at"],
                    ip=row["ip_hash"],
                    label=Label(row["label"]),
                    link_index=row["link_index"],
                    event_id=row["id"],
                )
            )
            prior_rows[row["id"]] = row
        plans: dict[int, tuple[int, bool]] = {}
        campaign_ids = {raw.campaign_id for raw in valid}
        counts: dict[int, list[int]] = defaultdict(list)
        for campaign_id, index in TrackedLink.objects.filter(
            campaign_id__in=campaign_ids
        ).values_list("campaign_id", "index"):
            counts[campaign_id].append(index)
        for campaign_id in campaign_ids:
            indexes = counts.get(campaign_id, [])
            plans[campaign_id] = (sum(1 for i in indexes if i), 0 in indexes)
        return cls(priors, prior_rows, plans)


def _delivered_at(message: dict[str, Any]) -> datetime | None:
    if message["state"] in ("sent", "bounced", "unknown") and message["finished_at"]:
        return message["finished_at"]
    return message["sending_at"]  # transmission began; the outcome is not written yet


def _classify_all(
    valid: list[RawEvent], context: _Context, messages: dict[int, Any], report: IngestReport
) -> list[_Pending]:

    pending: list[_Pending] = []
    by_temp: dict[int, _Pending] = {}
    relabel_db = context.relabel_db
    for number, raw in enumerate(valid, 1):
        message = messages[raw.message_id]
        delivered = _delivered_at(message)
        link_count, has_honeypot = context.plans.get(raw.campaign_id, (0, False))
        is_honeypot = raw.kind is Kind.CLICK and raw.link_index == 0 and has_honeypot
        hashed = ip_hash(raw.ip)
        network = selectors.proxy_range_match(ip=raw.ip) if raw.ip else None
        earlier = tuple(context.priors.get(raw.message_id, ()))
        facts = EventFacts(
            kind=raw.kind,
            occurred_at=raw.occurred_at,
            method=raw.method,
            user_agent=raw.user_agent,
            ip=hashed,
            seconds_since_delivery=(raw.occurred_at - delivered).total_seconds()
            if delivered
            else None,
            link_index=raw.link_index if raw.kind is Kind.CLICK else None,
            is_honeypot=is_honeypot,
            link_count=link_count,
            earlier=earlier,
            network=network,
            portal_verified=raw.portal,
            **raw.headers,
        )
        verdict = classify(facts)
        label, automation_kind = stored_label(verdict, raw.kind)
        temp_id = -number
        event = Event(
            message_id=raw.message_id,
            campaign_id=raw.campaign_id,
            kind=raw.kind.value,
            occurred_at=raw.occurred_at,
            link_index=raw.link_index if raw.kind is Kind.CLICK else None,
            label=label,
            automation_kind=automation_kind,
            reason=verdict.reason,
            detail=verdict.detail[:100],
            ruleset_version=verdict.ruleset_version,
            device_unknown=verdict.device_unknown,
            method=raw.method,
            ip_prefix=ip_prefix(raw.ip),
            ip_hash=hashed,
            user_agent=raw.user_agent[:MAX_USER_AGENT],
            network=network.provider[:64] if network else "",
            source=Event.SOURCE_PORTAL if raw.portal else Event.SOURCE_TRACKING,
            source_id=raw.source_id[:64],
        )
        item = _Pending(raw, event, temp_id)
        pending.append(item)
        by_temp[temp_id] = item
        for implicated in verdict.implicates:
            if implicated < 0 and implicated in by_temp:
                earlier_event = by_temp[implicated].event
                if earlier_event.label != Label.AUTOMATED:
                    earlier_event.relabeled_from = f"{earlier_event.label}:{earlier_event.reason}"
                    earlier_event.label = Label.AUTOMATED.value
                    earlier_event.automation_kind = KIND_BY_REASON[SWEEP_MEMBER]
                    earlier_event.reason = SWEEP_MEMBER
                    earlier_event.device_unknown = True
                    report.relabeled += 1
            elif implicated in context.prior_rows:
                row = context.prior_rows[implicated]
                if row["label"] != Label.AUTOMATED:
                    relabel_db[implicated] = f"{row['label']}:{row['reason']}"
        # This event is now an "earlier" one for the next events of the message.
        context.priors[raw.message_id] = [
            *(
                _relabelled(prior, by_temp, relabel_db)
                for prior in context.priors.get(raw.message_id, ())
            ),
            PriorEvent(
                kind=raw.kind,
                at=raw.occurred_at,
                ip=hashed,
                label=Label(event.label),
                link_index=event.link_index,
                event_id=temp_id,
            ),
        ]
    return pending


def _relabelled(
    prior: PriorEvent, by_temp: dict[int, _Pending], relabel_db: dict[int, str]
) -> PriorEvent:
    if prior.event_id is None or prior.label is Label.AUTOMATED:
        return prior
    if (prior.event_id < 0 and by_temp[prior.event_id].event.label == Label.AUTOMATED) or (
        prior.event_id in relabel_db
    ):
        return PriorEvent(
            kind=prior.kind,
            at=prior.at,
            ip=prior.ip,
            label=Label.AUTOMATED,
            link_index=prior.link_index,
            event_id=prior.event_id,
        )
    return prior


def _hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _store(
    pending: list[_Pending], context: _Context, messages: dict[int, Any], report: IngestReport
) -> None:

    events = Event.objects.bulk_create([item.event for item in pending], batch_size=1000)
    report.stored = len(events)
    for event in events:
        report.by_label[event.label] = report.by_label.get(event.label, 0) + 1
    activity: dict[tuple[datetime, int, str, str], int] = defaultdict(int)
    for event in events:
        activity[(_hour(event.occurred_at), event.campaign_id, event.kind, event.label)] += 1
    relabel_db = context.relabel_db
    touched = {event.message_id for event in events}
    if relabel_db:
        for event_id, previous in relabel_db.items():
            row = context.prior_rows[event_id]
            Event.objects.filter(pk=event_id).exclude(label=Label.AUTOMATED).update(
                label=Label.AUTOMATED.value,
                automation_kind=KIND_BY_REASON[SWEEP_MEMBER],
                reason=SWEEP_MEMBER,
                device_unknown=True,
                relabeled_from=previous[:60],
            )
            key = (_hour(row["occurred_at"]), row["campaign_id"], row["kind"])
            activity[(*key, row["label"])] -= 1
            activity[(*key, Label.AUTOMATED.value)] += 1
            touched.add(row["message_id"])
        report.relabeled += len(relabel_db)
    message_engagement_refresh(message_ids=sorted(touched))
    event_rollup_add(activity)
    report.webhooks = _emit_webhooks(events, messages)


def message_engagement_refresh(*, message_ids: list[int]) -> int:
    """Recompute the engagement columns of these messages from their events.

    Every row is locked first, in id order — before any rollup row is touched — as the
    message triggers do, so a send worker and the ingester never deadlock; then one
    statement per 5,000 messages, whose rollup trigger applies the differences.
    Returns the number of messages looked at.
    """
    if not message_ids:
        return 0
    ordered = sorted(set(message_ids))
    columns = rollups.ENGAGEMENT_COLUMNS
    assignments = ", ".join(f"{name} = COALESCE(e.{name}, 0)" for name in columns)
    differs = " OR ".join(
        f"reporting_messagestat.{name} <> COALESCE(e.{name}, 0)" for name in columns
    )
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT 1 FROM reporting_messagestat WHERE message_id = ANY(%s) "
                "ORDER BY message_id FOR UPDATE",
                [ordered],
            )
        for start in range(0, len(ordered), 5000):
            chunk = ordered[start : start + 5000]
            placeholders = ", ".join(["%s"] * len(chunk))
            select = rollups.engagement_select(f"e.message_id IN ({placeholders})")
            cursor.execute(
                f"UPDATE reporting_messagestat SET {assignments} "  # noqa: S608 - fixed names
                f"FROM ({select}) e WHERE reporting_messagestat.message_id = e.message_id "
                f"AND ({differs})",
                chunk,
            )
    return len(ordered)


def event_rollup_add(deltas: dict[tuple[datetime, int, str, str], int]) -> None:
    """Add event counts per (hour, campaign, kind, label), locking rows in key order."""

    items = sorted((key, value) for key, value in deltas.items() if value)
    if not items:
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO reporting_eventrollup (hour, campaign_id, kind, label, events) "
                "SELECT * FROM unnest(%s::timestamptz[], %s::bigint[], %s::text[], %s::text[], "
                "%s::bigint[]) ORDER BY 1, 2, 3, 4 "
                "ON CONFLICT (hour, campaign_id, kind, label) "
                "DO UPDATE SET events = reporting_eventrollup.events + EXCLUDED.events",
                [
                    [key[0] for key, _ in items],
                    [key[1] for key, _ in items],
                    [key[2] for key, _ in items],
                    [key[3] for key, _ in items],
                    [value for _, value in items],
                ],
            )
        return

    for (hour, campaign_id, kind, label), value in items:
        updated = EventRollup.objects.filter(
            hour=hour, campaign_id=campaign_id, kind=kind, label=label
        ).update(events=F("events") + value)
        if not updated:
            EventRollup.objects.create(
                hour=hour, campaign_id=campaign_id, kind=kind, label=label, events=value
            )


def _emit_webhooks(events: list[Any], messages: dict[int, Any]) -> int:
    # import cycle: services.tracking runs this ingester (ignored by the acyclic contract)
    from reporting import services, webhooks

    if not services.webhook_subscribers(event_types=("opened", "clicked")):
        return 0
    campaign_ids = {event.campaign_id for event in events}
    marketing = dict(Campaign.objects.filter(id__in=campaign_ids).values_list("id", "marketing_id"))
    contact_ids = {messages[e.message_id]["contact_id"] for e in events} - {None}
    external = dict(Contact.objects.filter(id__in=contact_ids).values_list("id", "external_id"))
    emitted = []
    for event in events:
        contact_id = messages[event.message_id]["contact_id"]
        event_type = "opened" if event.kind == Kind.OPEN else "clicked"
        emitted.append(
            (
                event_type,
                webhooks.build_payload(
                    event_type=event_type,
                    message_id=event.message_id,
                    campaign_id=event.campaign_id,
                    campaign_marketing_id=marketing.get(event.campaign_id) or None,
                    contact_external_id=external.get(contact_id) if contact_id else None,
                    event_time=event.occurred_at,
                    classification={
                        "label": event.label,
                        "reason": event.reason,
                        "ruleset_version": event.ruleset_version,
                        "device_unknown": event.device_unknown,
                    },
                    event_id=f"evt_{event.kind}_{event.pk}",
                ),
            )
        )
    return services.webhook_emit_many(events=emitted)


def buffered_counts() -> dict[str, int | None]:
    """How many entries wait in each buffer (for the ingest command and health)."""

    spooled = 0
    for path in buffer.spool_files():
        try:
            with path.open("rb") as handle:
                spooled += sum(1 for _ in handle)
        except OSError:
            continue
    return {
        "stream": buffer.stream_length(),
        "table": PendingEvent.objects.count(),
        "spool": spooled,
    }
