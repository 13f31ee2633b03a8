"""Rebuild every contact's blind-index token set (after an upgrade adds a token kind).

Issue 20 added name and phone tokens: contacts written before it are found by name
only once this has run. Decrypts each contact under one audited ``phi.access``
(purpose ``tokens.rebuild``) per batch; prints counts only, never a value.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from contacts import upsert
from contacts.models import Contact
from luxmail import crypto


class Command(BaseCommand):
    help = "Recompute the blind-index tokens of every contact (names, phones, profile)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--batch", type=int, default=1000, help="Contacts per transaction.")

    def handle(self, *args: Any, batch: int, **options: Any) -> None:
        done = 0
        last = 0
        while True:
            chunk = list(
                Contact.objects.filter(pk__gt=last)
                .select_related("profile")
                .order_by("pk")[: max(1, batch)]
            )
            if not chunk:
                break
            with transaction.atomic():
                access = crypto.phi_access(
                    actor="manage.py contacts_reindex",
                    purpose="tokens.rebuild",
                    details={"contacts": len(chunk)},
                )
                done += upsert.tokens_rebuild(chunk, access=access)
            last = chunk[-1].pk
            self.stdout.write(f"{done} contacts reindexed")
        self.stdout.write(self.style.SUCCESS(f"Done: {done} contacts."))
