"""Rebuild every contact's blind-index token set (after an upgrade adds a token kind).

Issue 20 added name and phone tokens; token layout 2 (issue 16 §3) adds decade and
century date tokens. Until this has run, contacts written before are not found by name,
and segments compile date and age ranges without the coarse levels (exact, slower).

Walks the contacts in primary-key order, ``--batch`` at a time (memory stays bounded
by one batch), each batch in its own transaction under one audited ``phi.access``
(purpose ``tokens.rebuild``). Only a complete pass records the layout
(``TokenIndexState``); an interrupted one can be started again (``--start-after`` skips
the contacts already done). On PostgreSQL it runs ``VACUUM`` on the token-set table after
every ``--vacuum-every`` contacts, so later batches reuse the space of the row versions
earlier ones left behind (otherwise the table and its GIN index double, and segment
counts need twice the memory to stay cached), and ends with ``VACUUM (ANALYZE)``.
Prints counts only, never a value.
"""

from __future__ import annotations

import resource
import time
from typing import Any

from django.core.management.base import BaseCommand
from django.db import connection, transaction

from contacts import tokens, upsert
from contacts.models import Contact, ContactTokenSet
from luxmail import crypto


class Command(BaseCommand):
    help = "Recompute the blind-index tokens of every contact (names, phones, profile, dates)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--batch", type=int, default=1000, help="Contacts per transaction.")
        parser.add_argument(
            "--start-after",
            type=int,
            default=0,
            help="Resume after this contact id (printed by an interrupted run).",
        )
        parser.add_argument(
            "--vacuum-every",
            type=int,
            default=100_000,
            help="VACUUM the token-set table after this many contacts (0: only at the end).",
        )

    def handle(
        self, *args: Any, batch: int, start_after: int, vacuum_every: int, **options: Any
    ) -> None:
        started = time.monotonic()
        done = 0
        vacuumed = 0
        last = start_after
        total = Contact.objects.filter(pk__gt=last).count()
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
            del chunk
            self.stdout.write(f"{done} of {total} contacts reindexed (last id {last})")
            if vacuum_every > 0 and done - vacuumed >= vacuum_every:
                # The old versions of the rows just rewritten are dead to every
                # transaction that starts from now on: VACUUM frees their space for the
                # next batches' new versions instead of the table growing by a copy.
                _vacuum("VACUUM")
                vacuumed = done
        # Every contact now has the current layout; contacts written meanwhile were
        # tokenized by the current code. Only now may segments rely on it.
        upsert.record_token_layout(tokens.TOKEN_VERSION)
        # Every row was rewritten: drop the old row versions from the heap and the GIN
        # index and refresh the statistics the planner reads for the new tokens.
        _vacuum("VACUUM (ANALYZE)")
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        self.stdout.write(
            self.style.SUCCESS(
                f"Done: {done} contacts in {time.monotonic() - started:.0f} s "
                f"(peak memory {rss_mb:.0f} MB); token layout {tokens.TOKEN_VERSION} recorded."
            )
        )


def _vacuum(command: str) -> None:
    """``command`` on the token-set table (PostgreSQL, outside a transaction only)."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return
    with connection.cursor() as cursor:
        table = connection.ops.quote_name(ContactTokenSet._meta.db_table)
        cursor.execute(f"{command} {table}")
