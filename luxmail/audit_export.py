"""The audit trail as CSV or JSON for an auditor (issue 17), streamed.

:func:`audit_export` audits the export itself (``audit.export``: the filters and the
format, written before the first row) and returns a generator of text chunks: events
are read in id order through a server-side cursor in chunks of :data:`CHUNK`, so
memory stays bounded whatever the range. Each row carries the event's hash and the
previous hash, so the exported range can be checked against the chain.

Details are exported both as readable lines and as their JSON; neither holds PHI
(``luxmail/audit.py`` keeps details to ids, counts and codes). Cells a spreadsheet
would run as a formula (``=``, ``+``, ``-``, ``@``, tab, CR first) get a leading ``'``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from django.http import HttpRequest
from django.utils import timezone

from luxmail import audit, selectors
from luxmail.actors import Actor
from luxmail.models import AuditEvent
from luxmail.templatetags.audit_details import action_text, detail_lines

CHUNK = 2000
FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json"}
COLUMNS = [
    "id", "created_at", "actor", "actor_id", "action", "description", "target_type",
    "target_id", "phi", "ip", "details", "details_json", "prev_hash", "hash",
]  # fmt: skip
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class AuditExportError(ValueError):
    """An unknown export format (the message says which exist)."""


@dataclass(frozen=True)
class AuditExport:
    chunks: Iterator[str]
    content_type: str
    filename: str


def _neutralize(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def _row(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.pk,
        "created_at": event.created_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": event.actor_label,
        "actor_id": event.actor_id,
        "action": event.action,
        "description": action_text(event.action),
        "target_type": event.target_type,
        "target_id": event.target_id,
        "phi": bool(event.phi),
        "ip": event.ip,
        "details": "; ".join(detail_lines(event.details)),
        "details_json": event.details,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def _events(filters: dict[str, Any]) -> Iterator[AuditEvent]:
    events = selectors.audit_events(**filters).order_by("id")
    return events.iterator(chunk_size=CHUNK)


def _csv_chunks(filters: dict[str, Any]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for count, event in enumerate(_events(filters), start=1):
        row = _row(event)
        row["details_json"] = json.dumps(row["details_json"], sort_keys=True)
        writer.writerow(
            [
                _neutralize(v) if isinstance(v, str) else ("" if v is None else v)
                for v in row.values()
            ]
        )
        if count % 200 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _json_chunks(filters: dict[str, Any]) -> Iterator[str]:
    yield "["
    separator = "\n"
    for event in _events(filters):
        yield separator + json.dumps(_row(event), sort_keys=True, default=str)
        separator = ",\n"
    yield "\n]\n"


def audit_export(
    *,
    filters: dict[str, Any],
    fmt: str,
    actor: Actor,
    request: HttpRequest | None = None,
) -> AuditExport:
    """Audit the export (``audit.export``) and return its streamed content.

    ``filters`` are :func:`luxmail.selectors.audit_events` arguments. Raises
    :class:`AuditExportError` for an unknown ``fmt``.
    """
    if fmt not in FORMATS:
        raise AuditExportError(f"Unknown export format; choose one of: {', '.join(FORMATS)}.")
    shown = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in filters.items()}
    audit.record(
        "audit.export", actor=actor, request=request, details={"format": fmt, "filters": shown}
    )
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    chunks = _csv_chunks(filters) if fmt == "csv" else _json_chunks(filters)
    return AuditExport(chunks, FORMATS[fmt], f"luxmail-audit-{stamp}.{fmt}")
