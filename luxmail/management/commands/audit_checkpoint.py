from typing import Any

from django.core.management.base import BaseCommand, CommandError

from luxmail import audit


class Command(BaseCommand):
    help = (
        "Append a signed checkpoint of the audit chain's ends (what Celery beat does "
        "periodically). Refuses, exit 1, when the chain no longer matches the last one."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        result = audit.checkpoint_write(reason="manual")
        if not result.ok:
            raise CommandError(result.message)
        checkpoint = result.checkpoint
        assert checkpoint is not None  # written when ok
        self.stdout.write(
            f"Checkpoint written: {checkpoint.count} events, #{checkpoint.first_id} to "
            f"#{checkpoint.last_id} (line {checkpoint.line})."
        )
