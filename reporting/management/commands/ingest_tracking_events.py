"""Classify and store buffered tracking events now (docs/tracking.md#ingestion).

    manage.py ingest_tracking_events            # until the buffers are empty
    manage.py ingest_tracking_events --status   # how many entries wait, nothing else

Celery beat runs the same work every few seconds; this command is for operators (after
an outage, or on a web host whose spool directory holds events written while both
Redis and the database were unreachable).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from reporting import ingest, services


class Command(BaseCommand):
    help = "Classify and store buffered opens and clicks."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--status", action="store_true", help="Only show what is waiting.")
        parser.add_argument("--batch", type=int, default=ingest.BATCH)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["status"]:
            counts = ingest.buffered_counts()
            self.stdout.write(
                "waiting: "
                + ", ".join(
                    f"{name} {'n/a' if value is None else value}" for name, value in counts.items()
                )
            )
            return
        total = ingest.IngestReport()
        while True:
            report = services.tracking_events_ingest(limit=options["batch"], max_batches=1000)
            total.add(report)
            if report.busy:
                self.stderr.write("Another ingester is running; try again when it finishes.")
                break
            if report.read == 0:
                break
        labels = ", ".join(f"{label} {count}" for label, count in sorted(total.by_label.items()))
        self.stdout.write(
            f"stored {total.stored} events ({labels or 'none'}); {total.duplicates} already "
            f"stored, {total.dropped} dropped (malformed or unknown message), "
            f"{total.relabeled} relabeled as sweep members, {total.webhooks} webhook deliveries"
        )
