from typing import Any

from django.core.management.base import BaseCommand, CommandError

from luxmail import audit


class Command(BaseCommand):
    help = (
        "Verify the audit log's hash chain and both its ends against the latest signed "
        "checkpoint. Exits 0 when intact (and writes a new checkpoint), 1 saying what is "
        "broken or missing."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        result = audit.verification_run()
        if not result.ok:
            raise CommandError(result.message)
        self.stdout.write(result.message)
