from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from luxmail import holds, retention


class Command(BaseCommand):
    help = (
        "Apply the retention settings now (Celery beat does it every "
        "LUXMAIL_RETENTION_SECONDS). --dry-run prints what would go and what is held."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Count only; delete nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        dry_run = bool(options["dry_run"])
        result = retention.retention_run(dry_run=dry_run)
        if result.skipped:
            self.stdout.write(f"Nothing done: {result.skipped}.")
            return
        verb = "would delete" if dry_run else "deleted"
        self.stdout.write(("Dry run: nothing is deleted.\n" if dry_run else "") + "Retention:")
        for item in result.results:
            line = (
                f"  {item.label} (kept {item.days} days, before {item.cutoff:%Y-%m-%d}): "
                f"{verb} {item.deleted}, held {item.held}"
            )
            if item.remaining:
                line += f", {item.remaining} left for the next run"
            self.stdout.write(line)
        self.stdout.write("Legal holds in force:")
        active = holds.active_holds()
        if not active.any:
            self.stdout.write("  none")
        if active.organization:
            self.stdout.write("  the whole organization: every purge is suspended")
        if active.campaign_ids:
            ids = ", ".join(f"#{i}" for i in sorted(active.campaign_ids))
            self.stdout.write(f"  campaigns {ids}")
        if active.contact_ids:
            ids = ", ".join(f"#{i}" for i in sorted(active.contact_ids))
            self.stdout.write(f"  contacts {ids}")
