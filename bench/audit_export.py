"""Audit trail export and keyset paging at volume (luxmail/audit_export.py, issue 17).

    .venv/bin/python bench/audit_export.py                  # 200,000 events
    .venv/bin/python bench/audit_export.py --events 1000000

Fills the ``luxmail_bench_audit`` database with ``--events`` audit rows once (plain
INSERTs with synthetic hashes: the export does not verify the chain), then prints the
CSV and JSON export rates, the peak RSS growth while streaming them (bounded: the rows
come through a server-side cursor in chunks), and the time of the Audit page's first
and deepest keyset page, with the machine's load.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import median_seconds, setup_django, system_load


def _rss_mb() -> float:
    """The current resident set (the peak counter already holds the fill's batches)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 1e6


def _fill(target: int) -> None:
    from django.utils import timezone

    from luxmail.models import AuditEvent

    have = AuditEvent.objects.count()
    now = timezone.now()
    batch = 5000
    while have < target:
        size = min(batch, target - have)
        AuditEvent.objects.bulk_create(
            [
                AuditEvent(
                    created_at=now,
                    actor_label=f"username:user{(have + i) % 50}",
                    action=("phi.access", "campaign.update", "auth.login")[(have + i) % 3],
                    target_type="campaigns.campaign",
                    target_id=str((have + i) % 997),
                    phi=(have + i) % 3 == 0,
                    ip="127.0.0.1",
                    details={"recipients": have + i, "purpose": "bench", "fields": ["a", "b"]},
                    prev_hash="0" * 64,
                    hash=uuid.uuid4().hex * 2,
                )
                for i in range(size)
            ]
        )
        have += size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    setup_django("luxmail_bench_audit")
    from luxmail import audit_export, selectors
    from luxmail.models import AuditEvent

    _fill(args.events)
    total = AuditEvent.objects.count()
    print(f"audit events in the table: {total:,}")
    for fmt, chunks in (("csv", audit_export._csv_chunks), ("json", audit_export._json_chunks)):
        before = highest = _rss_mb()
        start = time.perf_counter()
        size = 0
        for number, chunk in enumerate(chunks({})):
            size += len(chunk)
            if number % 500 == 0:
                highest = max(highest, _rss_mb())
        seconds = time.perf_counter() - start
        print(
            f"{fmt} export: {total / seconds:,.0f} events/s, {size / 1e6:,.1f} MB in "
            f"{seconds:.1f} s; RSS {before:,.0f} MB before, at most {highest:,.0f} MB while "
            "streaming"
        )
    events = selectors.audit_events()
    oldest = AuditEvent.objects.order_by("id").values_list("id", flat=True)[60]
    first = median_seconds(lambda: selectors.audit_page(events), runs=7)
    deep = median_seconds(lambda: selectors.audit_page(events, before=oldest), runs=7)
    phi = selectors.audit_events(phi_only=True, action="phi.")
    deep_phi = median_seconds(lambda: selectors.audit_page(phi, before=oldest), runs=7)
    print(
        f"keyset page of 50: first {first * 1000:.1f} ms, deepest {deep * 1000:.1f} ms, "
        f"deepest with PHI-only filter {deep_phi * 1000:.1f} ms"
    )
    print(f"machine load: {system_load()}")


if __name__ == "__main__":
    main()
