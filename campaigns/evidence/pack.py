"""Write a campaign's evidence pack: one zip, every file hashed, the manifest signed.

Layout (all under ``evidence-campaign-<id>/``)::

    README.txt                 what is inside and the one-line offline check
    campaign.json              the campaign's definition (ids, sender, policy, times)
    template/subject.txt       the frozen template, as it was when sending started
    template/body.html
    template/body.txt
    audience.json              segments and lists (rule trees), exclusions, counts
    recipients.csv             per recipient: ids, state, the consent it was sent on
    delivery.csv               per recipient: delivery proof (host, TLS, reply, channel)
    unsubscribes_complaints.csv  unsubscribes and complaints honoured, with times
    audit.jsonl                the campaign's audit entries, chain hashes included
    pubkey.pem                 the organization's Ed25519 public key
    MANIFEST                   "sha256  path" for every file above (sha256sum format)
    MANIFEST.sig               raw Ed25519 signature of MANIFEST

No PHI: contacts appear by id and UUID only, consent by its id, purpose, source and
times; replies are stored redacted. Memory stays bounded: rows are read in chunks
(``iterator``) and written straight into the zip member while it is hashed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from django.db.models import Count, Q
from django.utils import timezone

from campaigns.evidence import keys
from campaigns.models import BounceEvent, BounceKind, Campaign, DeliveryProof, Message
from contacts.models import Consent
from luxmail import audit
from luxmail.actors import Actor
from luxmail.models import AuditEvent

_CHUNK = 2000

VERIFY_COMMAND = (
    "openssl pkeyutl -verify -pubin -inkey pubkey.pem -rawin -in MANIFEST -sigfile MANIFEST.sig"
    " && sha256sum --strict -c MANIFEST"
)


@dataclass(frozen=True)
class PackSummary:
    campaign_id: int
    files: int
    recipients: int
    manifest_sha256: str
    key_fingerprint: str


def folder(campaign: Campaign) -> str:
    return f"evidence-campaign-{campaign.pk}"


def _when(value: datetime | None) -> str:
    return value.isoformat() if value else ""


class _Writer:
    """Adds members to the zip, hashing each while it is written."""

    def __init__(self, archive: zipfile.ZipFile, root: str):
        self.archive = archive
        self.root = root
        self.hashes: list[tuple[str, str]] = []

    def text(self, name: str, chunks: Iterable[str]) -> None:
        digest = hashlib.sha256()
        with self.archive.open(f"{self.root}/{name}", "w") as member:
            for chunk in chunks:
                data = chunk.encode()
                digest.update(data)
                member.write(data)
        self.hashes.append((name, digest.hexdigest()))

    def raw(self, name: str, data: bytes) -> None:
        self.archive.writestr(f"{self.root}/{name}", data)


def _csv(header: list[str], rows: Iterable[list[Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for count, row in enumerate(rows, start=1):
        writer.writerow(["" if cell is None else cell for cell in row])
        if count % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _json(value: Any) -> Iterator[str]:
    yield json.dumps(value, indent=2, sort_keys=True, default=str) + "\n"


def _campaign(campaign: Campaign) -> dict[str, Any]:
    sender = campaign.sender
    return {
        "id": campaign.pk,
        "uuid": str(campaign.uuid),
        "name": campaign.name,
        "marketing_id": campaign.marketing_id,
        "status": campaign.status,
        "transactional": campaign.transactional,
        "secure_policy": campaign.secure_policy,
        "encrypted_subject_visible": campaign.encrypted_subject_visible,
        "track_opens": campaign.track_opens,
        "track_clicks": campaign.track_clicks,
        "throttle_per_minute": campaign.throttle_per_minute,
        "template_id": campaign.template_id,
        "template_phi_bearing": campaign.frozen_phi_bearing,
        "sender": {"id": sender.pk, "from_email": sender.from_email} if sender else None,
        "created_by": campaign.created_by_id,
        "created_at": _when(campaign.created_at),
        "scheduled_at": _when(campaign.scheduled_at),
        "started_at": _when(campaign.started_at),
        "finished_at": _when(campaign.finished_at),
        "recipients": campaign.recipients,
    }


def _purpose(campaign: Campaign) -> str:
    if campaign.transactional:
        return "transactional"
    return "phi_marketing" if campaign.frozen_phi_bearing else "marketing"


def _audience(campaign: Campaign) -> dict[str, Any]:
    def groups(manager: Any) -> list[dict[str, Any]]:
        return [
            {"id": row.pk, "name": row.name, "rules": getattr(row, "rules", None)}
            for row in manager.order_by("pk")
        ]

    states = dict(
        Message.objects.filter(campaign=campaign)
        .values_list("state")
        .annotate(n=Count("id"))
        .values_list("state", "n")
    )
    return {
        "segments": groups(campaign.segments),
        "lists": groups(campaign.lists),
        "exclude_segments": groups(campaign.exclude_segments),
        "exclude_lists": groups(campaign.exclude_lists),
        "consent_purpose": _purpose(campaign),
        "recipients_frozen_at_start": campaign.recipients,
        "messages_by_state": dict(sorted(states.items())),
    }


def _message_chunks(campaign: Campaign) -> Iterator[list[Message]]:
    chunk: list[Message] = []
    rows = (
        Message.objects.filter(campaign=campaign)
        .select_related("contact")
        .order_by("pk")
        .iterator(chunk_size=_CHUNK)
    )
    for message in rows:
        chunk.append(message)
        if len(chunk) == _CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _consent_in_force(consents: list[Consent], at: datetime) -> Consent | None:
    """The newest consent granted by ``at`` and neither revoked nor expired then."""
    for consent in consents:  # newest first
        if consent.granted_at > at:
            continue
        if consent.revoked_at is not None and consent.revoked_at <= at:
            continue
        if consent.expires_at is not None and consent.expires_at <= at:
            continue
        return consent
    return None


def _recipients(campaign: Campaign) -> Iterator[list[Any]]:
    purpose = _purpose(campaign)
    for chunk in _message_chunks(campaign):
        contact_ids = {m.contact_id for m in chunk if m.contact_id}
        by_contact: dict[int, list[Consent]] = {}
        grants = Consent.objects.filter(contact_id__in=contact_ids, purpose=purpose)
        for grant in grants.order_by("-granted_at", "-id"):
            by_contact.setdefault(grant.contact_id, []).append(grant)
        for message in chunk:
            # Consent is checked when a worker claims the message (campaigns/sending/queue.py).
            at = message.sending_at or message.finished_at or message.queued_at
            consent = _consent_in_force(by_contact.get(message.contact_id or 0, []), at)
            yield [
                message.pk,
                message.contact_id,
                str(message.contact.uuid) if message.contact else "",
                message.state,
                _when(message.queued_at),
                purpose,
                str(consent.uuid) if consent else "",
                consent.source if consent else "",
                _when(consent.granted_at) if consent else "",
                _when(consent.recorded_at) if consent else "",
                _when(consent.revoked_at) if consent else "",
            ]


DELIVERY_HEADER = [
    "message_id",
    "contact_id",
    "state",
    "channel",
    "channel_reason",
    "smtp_code",
    "smtp_reply",
    "sending_at",
    "finished_at",
    "host",
    "port",
    "route",
    "tls_version",
    "tls_cipher",
    "peer_cert_sha256",
    "cert_verified",
    "mta_sts",
    "dane",
    "secured_at",
    "replied_at",
]


def delivery_rows(campaign: Campaign) -> Iterator[list[Any]]:
    """Per-message delivery proof of a campaign (the CSV export and the pack share it)."""
    for chunk in _message_chunks(campaign):
        proofs = {p.message_id: p for p in DeliveryProof.objects.filter(message__in=chunk)}
        for m in chunk:
            p = proofs.get(m.pk)
            yield [
                m.pk,
                m.contact_id,
                m.state,
                m.channel,
                m.channel_reason,
                m.smtp_code,
                m.smtp_reply,
                _when(m.sending_at),
                _when(m.finished_at),
                *(
                    [
                        p.host,
                        p.port,
                        p.route,
                        p.tls_version,
                        p.tls_cipher,
                        p.peer_cert_sha256,
                        "yes" if p.cert_verified else "no",
                        p.mta_sts,
                        p.dane or "not checked",
                        _when(p.secured_at),
                        _when(p.replied_at),
                    ]
                    if p
                    else [""] * 11
                ),
            ]


def delivery_csv(campaign: Campaign) -> Iterator[str]:
    return _csv(DELIVERY_HEADER, delivery_rows(campaign))


def _opt_outs(campaign: Campaign) -> Iterator[list[Any]]:
    unsubscribes = AuditEvent.objects.filter(
        action="recipient.unsubscribe", details__campaign_id=campaign.pk
    ).order_by("id")
    for event in unsubscribes.iterator(chunk_size=_CHUNK):
        details = event.details or {}
        yield [
            "unsubscribe",
            _when(event.created_at),
            details.get("message_id") or "",
            event.target_id,
            details.get("method", ""),
            "suppressed" if details.get("new", True) else "already suppressed",
            event.pk,
        ]
    complaints = BounceEvent.objects.filter(
        kind=BounceKind.COMPLAINT, message__campaign=campaign
    ).order_by("id")
    for bounce in complaints.iterator(chunk_size=_CHUNK):
        yield [
            "complaint",
            _when(bounce.received_at),
            bounce.message_id,
            bounce.contact_id or "",
            bounce.source,
            "suppressed" if bounce.suppressed else "recorded",
            "",
        ]


def _audit(campaign: Campaign) -> Iterator[str]:
    events = AuditEvent.objects.filter(
        Q(target_type="campaigns.campaign", target_id__in=[str(campaign.uuid), str(campaign.pk)])
        | Q(details__campaign_id=campaign.pk)
    ).order_by("id")
    for event in events.iterator(chunk_size=_CHUNK):
        yield (
            json.dumps(
                {
                    "id": event.pk,
                    "created_at": _when(event.created_at),
                    "actor": event.actor_label,
                    "action": event.action,
                    "target_type": event.target_type,
                    "target_id": event.target_id,
                    "phi": event.phi,
                    "details": event.details,
                    "prev_hash": event.prev_hash,
                    "hash": event.hash,
                },
                sort_keys=True,
                default=str,
            )
            + "\n"
        )


def _readme(campaign: Campaign, key_fingerprint: str, created: datetime) -> str:
    return (
        f"Evidence pack of campaign #{campaign.pk} ({campaign.uuid}), "
        f"made {created.isoformat()}.\n\n"
        "Check it offline, in this folder, with standard tools only (OpenSSL 3, coreutils):\n\n"
        f"    {VERIFY_COMMAND}\n\n"
        "The first command proves MANIFEST was signed by the key in pubkey.pem; the second\n"
        "that every file matches its hash in MANIFEST. Compare the key's fingerprint\n"
        f"(SHA-256 of the raw key: {key_fingerprint}) with the one on the\n"
        "organization's settings page before trusting pubkey.pem.\n"
        "No PHI is in this pack: contacts appear by id and UUID only.\n"
    )


def evidence_pack_write(
    *, campaign: Campaign, out: IO[bytes], actor: Actor, request: Any = None
) -> PackSummary:
    """Write the pack of ``campaign`` as a zip into ``out`` (a file or a temp file).

    Audits ``evidence.export`` (campaign, file count, recipients, manifest hash: no
    PHI). Reads in chunks, so memory stays bounded whatever the campaign's size.
    """
    created = timezone.now()
    key = keys.evidence_key_current()
    root = folder(campaign)
    recipients = Message.objects.filter(campaign=campaign).count()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        writer = _Writer(archive, root)
        writer.text("README.txt", [_readme(campaign, key.fingerprint, created)])
        writer.text("campaign.json", _json(_campaign(campaign)))
        writer.text("template/subject.txt", [campaign.frozen_subject])
        writer.text("template/body.html", [campaign.frozen_html])
        writer.text("template/body.txt", [campaign.frozen_text])
        writer.text("audience.json", _json(_audience(campaign)))
        writer.text(
            "recipients.csv",
            _csv(
                [
                    "message_id",
                    "contact_id",
                    "contact_uuid",
                    "state",
                    "queued_at",
                    "consent_purpose",
                    "consent_id",
                    "consent_source",
                    "consent_granted_at",
                    "consent_recorded_at",
                    "consent_revoked_at",
                ],
                _recipients(campaign),
            ),
        )
        writer.text("delivery.csv", delivery_csv(campaign))
        writer.text(
            "unsubscribes_complaints.csv",
            _csv(
                ["kind", "at", "message_id", "contact", "how", "outcome", "audit_event_id"],
                _opt_outs(campaign),
            ),
        )
        writer.text("audit.jsonl", _audit(campaign))
        writer.text("pubkey.pem", [key.public_pem])
        manifest = "".join(f"{digest}  {name}\n" for name, digest in writer.hashes).encode()
        writer.raw("MANIFEST", manifest)
        writer.raw("MANIFEST.sig", keys.sign(key, manifest))
    manifest_sha256 = hashlib.sha256(manifest).hexdigest()
    audit.record(
        "evidence.export",
        actor=actor,
        request=request,
        target=campaign,
        details={
            "campaign_id": campaign.pk,
            "files": len(writer.hashes) + 2,
            "recipients": recipients,
            "manifest_sha256": manifest_sha256,
            "key_fingerprint": key.fingerprint,
        },
    )
    return PackSummary(
        campaign.pk, len(writer.hashes) + 2, recipients, manifest_sha256, key.fingerprint
    )


def delivery_export(*, campaign: Campaign, actor: Actor, request: Any = None) -> Iterator[str]:
    """The campaign's per-message delivery proof as CSV chunks; audited as
    ``campaign.delivery_export`` (ids and counts only, no PHI in the file)."""
    audit.record(
        "campaign.delivery_export",
        actor=actor,
        request=request,
        target=campaign,
        details={"campaign_id": campaign.pk},
    )
    return delivery_csv(campaign)
