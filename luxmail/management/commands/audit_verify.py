from typing import Any

from django.core.management.base import BaseCommand, CommandError

from luxmail import audit


class Command(BaseCommand):
    help = (
        "Verify the audit log's hash chain. Exits 0 when intact, 1 naming the first broken event."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        result = audit.verify()
        if not result.ok:
            raise CommandError(
                f"Audit chain broken at event #{result.broken_event_id}: {result.reason} "
                f"({result.checked} events verified before it)."
            )
        self.stdout.write(f"Audit chain intact: {result.checked} events checked.")
