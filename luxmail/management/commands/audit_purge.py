from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from luxmail import audit


class Command(BaseCommand):
    help = "Delete audit events older than LUXMAIL_AUDIT_RETENTION_DAYS (at least six years)."

    def handle(self, *args: Any, **options: Any) -> None:
        deleted = audit.purge_expired()
        self.stdout.write(
            f"Deleted {deleted} audit events older than "
            f"{settings.LUXMAIL_AUDIT_RETENTION_DAYS} days."
        )
