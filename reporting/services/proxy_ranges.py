"""Proxy ranges: the published network ranges of mail-privacy proxies (load, save, activate)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.core.cache import cache
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from luxmail import audit
from luxmail.actors import Actor
from reporting import proxy_ranges, selectors
from reporting.models import (
    ProxyRange,
    ProxyRangeList,
)

# --- proxy ranges -------------------------------------------------------------------------


class ProxyRangeLoadError(ValueError):
    """A range list could not be loaded (nothing was changed)."""


@dataclass(frozen=True)
class ReplaceResult:
    source: str
    added: int
    updated: int
    removed: int
    unchanged: int

    @property
    def total(self) -> int:
        return self.added + self.updated + self.unchanged


def _safe_location(location: str) -> str:
    """A URL without credentials or query (Microsoft's carries a client id), or a path."""
    parts = urlsplit(location)
    if parts.scheme in {"http", "https"}:
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"[:500]
    return location[:500]


def proxy_ranges_changed() -> None:
    """Tell every process to rebuild its range index (after the transaction commits)."""

    def bump() -> None:
        proxy_ranges.bump_version(cache)
        selectors.RANGE_CACHE.expire()

    transaction.on_commit(bump)


def proxy_ranges_replace(
    *,
    source: str,
    specs: Sequence[proxy_ranges.RangeSpec],
    actor: Actor = None,
    allow_empty: bool = False,
    location: str = "",
    published: str = "",
) -> ReplaceResult:
    """Make the rows of ``source`` equal ``specs``; other sources are untouched.

    Idempotent: loading the same list twice changes nothing the second time. Rows
    keep their ``active`` flag (an Admin's decision survives reloads). Refuses the
    ``admin`` source and, unless ``allow_empty``, an empty list (a truncated download
    must not wipe a source). Audits ``proxy_ranges.load`` with the counts and records
    the load's date, ``location`` (URL or file) and the list's own ``published`` date in
    ``ProxyRangeList`` — also when nothing changed: the list was checked today.
    """
    if source == ProxyRange.SOURCE_ADMIN:
        raise ProxyRangeLoadError(
            "The 'admin' source holds ranges added by hand; load into another."
        )
    if not source or not source.replace("_", "").replace("-", "").isalnum():
        raise ProxyRangeLoadError("A source name is letters, digits, '-' and '_' only.")
    if not specs and not allow_empty:
        raise ProxyRangeLoadError(
            f"The list for source '{source}' has no valid ranges; nothing was changed."
        )
    wanted = {spec.cidr: spec for spec in specs}
    with transaction.atomic():
        existing = {
            row.cidr: row for row in ProxyRange.objects.select_for_update().filter(source=source)
        }
        fields = ("scope", "kind", "provider", "label")
        changed: list[ProxyRange] = []
        unchanged = 0
        for cidr, row in existing.items():
            spec = wanted.get(cidr)
            if spec is None:
                continue
            values = (spec.scope.value, spec.kind.value, spec.provider, spec.label)
            if tuple(getattr(row, name) for name in fields) == values:
                unchanged += 1
                continue
            row.scope, row.kind, row.provider, row.label = values
            row.updated_at = timezone.now()
            changed.append(row)
        removed_ids = [row.pk for cidr, row in existing.items() if cidr not in wanted]
        new = [
            ProxyRange(
                cidr=spec.cidr,
                scope=spec.scope.value,
                kind=spec.kind.value,
                provider=spec.provider,
                label=spec.label,
                source=source,
            )
            for cidr, spec in wanted.items()
            if cidr not in existing
        ]
        ProxyRange.objects.bulk_create(new, batch_size=2000)
        ProxyRange.objects.bulk_update(changed, [*fields, "updated_at"], batch_size=2000)
        for start in range(0, len(removed_ids), 5000):
            ProxyRange.objects.filter(pk__in=removed_ids[start : start + 5000]).delete()
        result = ReplaceResult(source, len(new), len(changed), len(removed_ids), unchanged)
        if new or changed or removed_ids:
            proxy_ranges_changed()
        ProxyRangeList.objects.update_or_create(
            source=source,
            defaults={
                "refreshed_at": timezone.now(),
                "location": _safe_location(location),
                "published": published[:40],
                "ranges": result.total,
            },
        )
        audit.record(
            "proxy_ranges.load",
            actor=actor,
            details={
                "source": source,
                "added": result.added,
                "updated": result.updated,
                "removed": result.removed,
                "unchanged": result.unchanged,
            },
        )
    return result


def proxy_range_save(
    *, proxy_range: ProxyRange, actor: Actor, request: HttpRequest | None = None
) -> ProxyRange:
    """Validate and save one range (the admin form); audits ``proxy_range.save``.

    Raises ``ValidationError`` for a malformed CIDR or a duplicate within its source.
    """
    created = proxy_range.pk is None
    with transaction.atomic():
        proxy_range.full_clean()
        proxy_range.save()
        audit.record(
            "proxy_range.save",
            actor=actor,
            request=request,
            target_type="reporting.proxyrange",
            target_id=str(proxy_range.pk),
            details={
                "created": created,
                "cidr": proxy_range.cidr,
                "scope": proxy_range.scope,
                "kind": proxy_range.kind,
                "provider": proxy_range.provider,
                "source": proxy_range.source,
                "active": proxy_range.active,
            },
        )
        proxy_ranges_changed()
    return proxy_range


def proxy_ranges_delete(
    *, ranges: QuerySet[ProxyRange], actor: Actor, request: HttpRequest | None = None
) -> int:
    """Delete ``ranges``; audits ``proxy_range.delete`` with the CIDRs (not PHI)."""
    with transaction.atomic():
        cidrs = list(ranges.values_list("cidr", flat=True)[:1000])
        deleted, _ = ranges.delete()
        audit.record(
            "proxy_range.delete",
            actor=actor,
            request=request,
            details={"deleted": deleted, "cidrs": cidrs},
        )
        proxy_ranges_changed()
    return deleted


def proxy_ranges_set_active(
    *, ranges: QuerySet[ProxyRange], active: bool, actor: Actor, request: HttpRequest | None = None
) -> int:
    """Switch ``ranges`` on or off (kept across reloads); audits ``proxy_range.set_active``."""
    with transaction.atomic():
        changed = ranges.exclude(active=active).update(active=active, updated_at=timezone.now())
        audit.record(
            "proxy_range.set_active",
            actor=actor,
            request=request,
            details={"active": active, "changed": changed},
        )
        proxy_ranges_changed()
    return changed
