"""Re-encrypt every encrypted value under the primary key of LUXMAIL_ENCRYPTION_KEYS.

Resumable: rows are processed in primary-key order in committed batches, and a value
already under the primary key is left alone, so running the command again after an
interruption continues where it stopped. Plaintext never leaves ``luxmail.crypto``.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from luxmail import crypto, rotation


class Command(BaseCommand):
    help = "Re-encrypt every encrypted field under the primary key (resumable, with progress)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--batch-size", type=int, default=500)
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = rotation.rotate_all(
                batch_size=options["batch_size"],
                progress=not options["no_progress"],
                stream=self.stderr,  # type: ignore[arg-type]
            )
        except crypto.CryptoError as error:
            raise CommandError(f"Rotation stopped: {error}") from error
        self.stdout.write(
            f"Key rotation done: {report.rewritten} values re-encrypted under "
            f"{report.primary_id!r}, {report.already_current} already current, "
            f"{report.rows} rows in {report.models} models."
        )
