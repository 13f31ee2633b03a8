"""The compliance dashboard (issue 17 §8): read-only findings, each with where it is fixed.

Lives in ``reporting`` because it reads every layer below (accounts and audit in
``luxmail``, contact keys in ``contacts``, DKIM and deliveries in ``campaigns``).
Holds no PHI: user names are staff logins, the rest are counts, ids and dates.
Each :class:`Finding` has a status (``ok``, ``warn``, ``bad``, ``info``) and a link to
the page that fixes it (or the command, where the fix is an operator's).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import Group
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from campaigns.models import Message, SenderIdentity
from contacts.models import ContactEncryptionKey
from luxmail import breakglass, conf, crypto, roles
from luxmail import selectors as core_selectors
from luxmail.models import ApiKey, AuditEvent, LegalHold, User

STALE_DAYS = 90
DELIVERY_WINDOW_DAYS = 30
LIST_LIMIT = 50


@dataclass(frozen=True)
class Finding:
    item: str
    value: str
    status: str = "info"  # ok | warn | bad | info
    link: str = ""
    fix: str = ""


@dataclass
class Section:
    key: str
    title: str
    findings: list[Finding] = field(default_factory=list)


def _age_days(when: datetime | None, now: datetime) -> int | None:
    return None if when is None else (now - when).days


def _staff_link(user_id: int) -> str:
    return reverse("staff:detail", args=[user_id])


def _mfa_sets() -> tuple[set[int], set[int]]:
    totp = set(TOTPDevice.objects.filter(confirmed=True).values_list("user_id", flat=True))
    passkey = set(
        WebAuthnCredential.objects.filter(confirmed=True).values_list("user_id", flat=True)
    )
    return totp | passkey, passkey


def section_mfa(now: datetime) -> Section:
    section = Section("mfa", "Second factors and passkeys")
    second, passkey = _mfa_sets()
    for role in roles.ROLE_PERMISSIONS:
        group = Group.objects.filter(name=role).first()
        ids = (
            set(group.user_set.filter(is_active=True).values_list("pk", flat=True))
            if group
            else set()
        )
        if not ids:
            section.findings.append(Finding(f"{role}: coverage", "no active users"))
            continue
        with_mfa, with_passkey = len(ids & second), len(ids & passkey)
        section.findings.append(
            Finding(
                f"{role}: second factor / passkey",
                f"{with_mfa}/{len(ids)} ({100 * with_mfa // len(ids)} %) / "
                f"{with_passkey}/{len(ids)} ({100 * with_passkey // len(ids)} %)",
                "ok" if with_mfa == len(ids) else "warn",
                reverse("staff:index"),
            )
        )
    without = User.objects.filter(is_active=True).exclude(pk__in=second).order_by("username")
    for user in without[:LIST_LIMIT]:
        section.findings.append(
            Finding(
                f"No second factor: {user.get_username()}",
                "enrols at next sign-in" if user.last_login is None else "has signed in",
                "warn",
                _staff_link(user.pk),
                "Reset MFA or deactivate",
            )
        )
    return section


def section_accounts(now: datetime) -> Section:
    section = Section("accounts", "Inactive accounts and API keys")
    cutoff = now - timedelta(days=STALE_DAYS)
    inactive = User.objects.filter(is_active=True).filter(
        Q(last_login__lt=cutoff) | Q(last_login__isnull=True, date_joined__lt=cutoff)
    )
    section.findings.append(
        Finding(
            f"Active accounts without a sign-in for {STALE_DAYS} days",
            str(inactive.count()),
            "warn" if inactive.exists() else "ok",
            reverse("staff:index"),
        )
    )
    for user in inactive.order_by("last_login")[:LIST_LIMIT]:
        last = user.last_login.date().isoformat() if user.last_login else "never"
        section.findings.append(
            Finding(
                f"Inactive: {user.get_username()}",
                f"last sign-in {last}",
                "warn",
                _staff_link(user.pk),
                "Deactivate",
            )
        )
    unused = ApiKey.objects.filter(revoked_at__isnull=True).filter(
        Q(last_used_at__lt=cutoff) | Q(last_used_at__isnull=True, created_at__lt=cutoff)
    )
    for key in unused.order_by("created_at")[:LIST_LIMIT]:
        last = key.last_used_at.date().isoformat() if key.last_used_at else "never"
        section.findings.append(
            Finding(
                f"API key unused for {STALE_DAYS} days: {key.name} ({key.prefix}…)",
                f"last used {last}",
                "warn",
                reverse("api_keys"),
                "Revoke",
            )
        )
    if not unused.exists():
        section.findings.append(Finding(f"API keys unused for {STALE_DAYS} days", "0", "ok"))
    return section


def section_keys(now: datetime) -> Section:
    section = Section("keys", "Keys")
    due_days = conf.key_rotation_days()
    rotation = AuditEvent.objects.filter(action="crypto.rotate").order_by("-id").first()
    first = AuditEvent.objects.order_by("id").values_list("created_at", flat=True).first()
    since = rotation.created_at if rotation else first
    age = _age_days(since, now)
    section.findings.append(
        Finding(
            f"Encryption key ring (primary key '{crypto.keyring().primary_id}')",
            f"last rotation {rotation.created_at.date().isoformat()} ({age} days)"
            if rotation
            else f"never rotated (in use at least {age or 0} days)",
            "warn" if age is not None and age > due_days else "ok",
            "",
            f"Rotation due after {due_days} days: add a key, then manage.py rotate_keys "
            "(docs/operations.md)",
        )
    )
    soon = now + timedelta(days=30)
    expiring = ContactEncryptionKey.objects.filter(
        revoked_at__isnull=True, not_after__isnull=False, not_after__lte=soon
    )
    section.findings.append(
        Finding(
            "Contact S/MIME and PGP keys expired or expiring within 30 days",
            str(expiring.count()),
            "warn" if expiring.exists() else "ok",
            reverse("contacts:index"),
            "Ask the contact for a new certificate or key",
        )
    )
    for sender in SenderIdentity.objects.exclude(dkim_selector="").order_by("pk")[:LIST_LIMIT]:
        dkim_age = _age_days(sender.dkim_created_at, now)
        section.findings.append(
            Finding(
                f"DKIM key of {sender.dkim_domain or 'sender'} ({sender.dkim_selector})",
                "age unknown" if dkim_age is None else f"{dkim_age} days old",
                "warn" if dkim_age is None or dkim_age > due_days else "ok",
                reverse("campaigns:sender_detail", args=[sender.pk]),
                f"Rotate after {due_days} days",
            )
        )
    return section


def _event_line(event: AuditEvent | None, now: datetime) -> str:
    if event is None:
        return "never"
    when = timezone.localtime(event.created_at)
    return f"{when:%Y-%m-%d %H:%M} ({_age_days(event.created_at, now)} days ago)"


def section_audit(now: datetime) -> Section:
    section = Section("audit", "Audit trail and retention")
    status = core_selectors.audit_status()
    verification = status["last_verification"]
    ok = bool(verification and verification.details.get("ok"))
    if verification is None:
        state, outcome = "warn", ""
    elif not ok:
        state, outcome = "bad", " — FAILED"
    else:
        recent = (_age_days(verification.created_at, now) or 0) <= 7
        state, outcome = ("ok" if recent else "warn"), " — intact"
    section.findings.append(
        Finding(
            "Last audit chain verification",
            _event_line(verification, now) + outcome,
            state,
            reverse("audit"),
            "Verify the chain",
        )
    )
    run = AuditEvent.objects.filter(action="retention.purge").order_by("-id").first()
    purges = run.details.get("purges") if run else None
    deleted = (
        sum(int(r.get("deleted", 0)) for r in purges.values() if isinstance(r, dict))
        if isinstance(purges, dict)
        else None
    )
    section.findings.append(
        Finding(
            "Last retention run",
            _event_line(run, now) + (f", {deleted} rows deleted" if deleted is not None else ""),
            "ok" if run and (_age_days(run.created_at, now) or 0) <= 2 else "warn",
            reverse("audit") + "?action=retention.",
            "Celery beat runs luxmail.retention_purge (docs/operations.md)",
        )
    )
    holds = (
        LegalHold.objects.filter(released_at__isnull=True).values("scope").annotate(n=Count("id"))
    )
    summary = ", ".join(f"{row['n']} on {row['scope']}" for row in holds) or "none"
    section.findings.append(
        Finding(
            "Active legal holds", summary, "info", reverse("settings"), "Place or release holds"
        )
    )
    return section


def section_delivery(now: datetime) -> Section:
    section = Section("delivery", f"Delivery security, last {DELIVERY_WINDOW_DAYS} days")
    since = now - timedelta(days=DELIVERY_WINDOW_DAYS)
    counts = Message.objects.filter(queued_at__gte=since).aggregate(
        total=Count("id"),
        portal=Count("id", filter=Q(channel="portal")),
        tls_failed=Count(
            "id", filter=Q(state__in=["deferred", "failed"], smtp_reply__icontains="TLS")
        ),
    )
    total = counts["total"] or 0

    def rate(n: int) -> str:
        return f"{n} of {total} ({100 * n / total:.1f} %)" if total else "no messages"

    section.findings.append(
        Finding(
            "TLS failures (deferred or failed: TLS missing, unverified or refused)",
            rate(counts["tls_failed"]),
            "warn" if counts["tls_failed"] else "ok",
            reverse("campaigns:index"),
            "Check the relay or the destination's TLS (Settings → delivery mode)",
        )
    )
    section.findings.append(
        Finding(
            "Fallbacks to the secure portal",
            rate(counts["portal"]),
            "info",
            reverse("portal:index"),
            "Collect S/MIME or PGP keys, or use a relay that enforces TLS",
        )
    )
    return section


def section_break_glass(now: datetime) -> Section:
    section = Section("break_glass", "Break-glass access")
    grants = list(breakglass.open_grants())
    if not grants:
        section.findings.append(Finding("Open break-glass grants", "0", "ok"))
    for grant in grants:
        section.findings.append(
            Finding(
                f"Open break-glass grant #{grant.pk}: {grant.user.get_username()}",
                f"until {timezone.localtime(grant.expires_at):%Y-%m-%d %H:%M}"
                + ("" if grant.acknowledged_at else ", not yet reviewed"),
                "warn",
                reverse("staff:break_glass"),
                "Review or revoke",
            )
        )
    return section


def compliance_sections(*, now: datetime | None = None) -> list[Section]:
    """Every section of the dashboard, in page order."""
    now = now or timezone.now()
    return [
        section_mfa(now),
        section_accounts(now),
        section_keys(now),
        section_audit(now),
        section_delivery(now),
        section_break_glass(now),
    ]


def compliance_csv(sections: list[Section], *, base_url: str = "") -> str:
    """The dashboard as CSV: section, item, value, status, fix, link (absolute)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["section", "item", "value", "status", "fix", "link"])
    for section in sections:
        for finding in section.findings:
            row: list[Any] = [
                section.title,
                finding.item,
                finding.value,
                finding.status,
                finding.fix,
                (base_url + finding.link) if finding.link else "",
            ]
            # Cells a spreadsheet would run as formulas start with a quote.
            writer.writerow(["'" + c if isinstance(c, str) and c[:1] in "=+-@" else c for c in row])
    return out.getvalue()
