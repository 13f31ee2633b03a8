"""Retention: delete what the organization's retention settings say has expired.

Each app registers the data it owns as a :class:`Purge` (in its ``AppConfig.ready``;
the platform cannot import the apps above it): messages and bounce records
(campaigns), tracking events (reporting), portal messages (portal), finished imports
(contacts). :func:`retention_run` applies them all, from Celery beat
(``luxmail.retention_purge``) or ``manage.py retention_purge [--dry-run]``.

Guarantees (docs/operations.md "Retention"):

* **Legal holds win.** An active hold on the organization suspends every purge; a
  hold on a campaign or a contact removes its rows from each purge's candidates
  (``Purge.exclude_held``). The holds are read once per run.
* **Bounded.** Rows go in keyset batches in id order (``LUXMAIL_RETENTION_BATCH`` ids,
  each batch its own short transaction), at most ``LUXMAIL_RETENTION_MAX_BATCHES``
  batches per purge and run; the next run continues where this one stopped. No single
  huge transaction, no table lock.
* **Counted and audited, never PHI.** One ``retention.purge`` audit event per run with
  the counts deleted and held per purge, the cutoffs and the hold counts.
* **Dry run** counts what would go and what is held and deletes nothing.
* **Whole partitions.** A purge with a ``partition_key`` on a table partitioned by month
  (``luxmail/partitions.py``, PostgreSQL) drops each month that lies wholly before the
  cutoff and whose every row is eligible (expired and not held) — rows that point at
  them are first deleted or unlinked as their ``on_delete`` says — instead of deleting
  row by row; any other month falls back to the batches below.
* Reports stay: within a purge transaction ``luxmail.retention_purge`` is set, and the
  reporting triggers then keep each message's report row and the rollups (aggregates,
  not delivery records; docs/tracking.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.db import OperationalError, connection, models, transaction
from django.utils import timezone

from luxmail import audit, conf, org, partitions
from luxmail.holds import ActiveHolds, active_holds
from luxmail.models import OrgSettings

logger = logging.getLogger(__name__)

_LOCK_KEY = "luxmail:retention:run"


@dataclass(frozen=True)
class Purge:
    """One kind of data with a retention period.

    ``days`` names the :class:`~luxmail.models.OrgSettings` field that holds the
    period; ``expired(cutoff)`` returns every row past it (whether held or not);
    ``exclude_held(rows, holds)`` removes the rows a campaign or contact hold covers.
    """

    name: str
    label: str
    days: str
    model: type[models.Model]
    expired: Callable[[datetime], models.QuerySet[Any]]
    exclude_held: Callable[[models.QuerySet[Any], ActiveHolds], models.QuerySet[Any]] = (
        lambda rows, holds: rows
    )
    # The model field the table is partitioned by month on (PostgreSQL), if any.
    partition_key: str = ""
    # Runs in ascending order: rows that point at others (events, bounces) go before
    # the rows they point at (messages), so no delete has to cascade into a large set.
    order: int = 50


def unheld(
    *, campaign: str = "", contact: str = ""
) -> Callable[[models.QuerySet[Any], ActiveHolds], models.QuerySet[Any]]:
    """A :attr:`Purge.exclude_held` for rows that name a campaign and/or a contact
    through these lookups (``"campaign_id"``, ``"message__contact_id"``): rows of a held
    campaign or contact are removed; rows naming neither (null) stay candidates."""

    def exclude_held(rows: models.QuerySet[Any], holds: ActiveHolds) -> models.QuerySet[Any]:
        for lookup, ids in ((campaign, holds.campaign_ids), (contact, holds.contact_ids)):
            if lookup and ids:
                rows = rows.exclude(
                    models.Q(**{f"{lookup}__isnull": False}) & models.Q(**{f"{lookup}__in": ids})
                )
        return rows

    return exclude_held


_PURGES: dict[str, Purge] = {}


def register(purge: Purge) -> None:
    """Add (or replace, by name) a purge; called from an app's ``ready()``."""
    _PURGES[purge.name] = purge


def registered() -> list[Purge]:
    return sorted(_PURGES.values(), key=lambda purge: (purge.order, purge.name))


@dataclass
class PurgeResult:
    name: str
    label: str
    days: int
    cutoff: datetime
    deleted: int = 0  # rows of the purge's own model (cascades not counted)
    held: int = 0
    remaining: int = 0  # eligible rows left for the next run (batch limit reached)
    partitions: int = 0  # whole monthly partitions dropped (their rows are in ``deleted``)


@dataclass
class RunResult:
    dry_run: bool
    holds: ActiveHolds
    results: list[PurgeResult] = field(default_factory=list)
    skipped: str = ""  # why nothing ran (another run holds the lock)

    def as_details(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "holds": self.holds.as_counts(),
            "purges": {
                r.name: {
                    "days": r.days,
                    "cutoff": r.cutoff.isoformat(),
                    "deleted": r.deleted,
                    "held": r.held,
                    "remaining": r.remaining,
                    "partitions": r.partitions,
                }
                for r in self.results
            },
        }


def _cutoff(settings_obj: OrgSettings, purge: Purge, now: datetime) -> tuple[int, datetime]:
    days = int(getattr(settings_obj, purge.days))
    return days, now - timedelta(days=days)


def _mark_purge_transaction() -> None:
    # Read by the reporting triggers: a retention delete keeps report rows and rollups.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('luxmail.retention_purge', 'on', true)")


def _purge_batches(purge: Purge, eligible: models.QuerySet[Any]) -> tuple[int, int]:
    """Delete ``eligible`` in keyset batches; returns (deleted, batches left unused)."""
    batch = conf.retention_batch()
    deleted = 0
    last_id: Any = None
    for _ in range(conf.retention_max_batches()):
        page = eligible if last_id is None else eligible.filter(pk__gt=last_id)
        ids = list(page.order_by("pk").values_list("pk", flat=True)[:batch])
        if not ids:
            return deleted, 1
        last_id = ids[-1]
        with transaction.atomic():
            _mark_purge_transaction()
            _, per_model = purge.model._default_manager.filter(pk__in=ids).delete()
        deleted += per_model.get(purge.model._meta.label, 0)
    return deleted, 0


def _dependants_release(purge: Purge, rows: models.QuerySet[Any]) -> bool:
    """Delete or unlink what points at ``rows`` as each relation's ``on_delete`` says
    (the database holds no foreign keys into a partitioned table); False if a relation
    protects them, and nothing is dropped."""
    actions = []
    for relation in purge.model._meta.related_objects:
        field = relation.field
        model = relation.related_model
        assert not isinstance(model, str)  # resolved once the app registry is ready
        dependants = model._base_manager.filter(**{f"{field.name}__in": rows})
        on_delete = relation.on_delete
        if on_delete is models.DO_NOTHING:  # report rows: kept on purpose
            continue
        if on_delete not in (models.CASCADE, models.SET_NULL):
            if dependants.exists():
                return False
            continue
        actions.append((on_delete, field.name, dependants))
    for on_delete, name, dependants in actions:
        if on_delete is models.CASCADE:
            dependants.delete()
        else:
            dependants.update(**{name: None})
    return True


def _drop_partitions(
    purge: Purge, eligible: models.QuerySet[Any], cutoff: datetime
) -> tuple[int, int]:
    """Drop the months of ``purge``'s table that hold only eligible rows; returns
    (partitions dropped, rows they held)."""
    if not purge.partition_key:
        return 0, 0
    table = purge.model._meta.db_table
    dropped = rows = 0
    for part in partitions.partitions_list(table):
        if part.start is None or part.end is None or part.end > cutoff:
            continue
        window = {f"{purge.partition_key}__gte": part.start, f"{purge.partition_key}__lt": part.end}
        in_month = purge.model._default_manager.filter(**window)
        try:
            with transaction.atomic():
                _mark_purge_transaction()
                # Counting (not "NOT IN") keeps this linear however large the month is.
                total = in_month.count()
                if eligible.filter(**window).count() != total:
                    continue  # something in it is held or not final: row deletes decide
                if not _dependants_release(purge, in_month.values("pk")):
                    continue
                partitions.partition_drop(table, part)
        except OperationalError:
            # The table stayed locked (a long report): row deletes, or the next run.
            logger.warning("retention: %s busy, month %s kept for now", table, part.name)
            continue
        dropped += 1
        rows += total
    return dropped, rows


def retention_run(*, dry_run: bool = False, now: datetime | None = None) -> RunResult:
    """Apply every registered purge once; see the module docstring for the guarantees.

    Returns the counts. A real run takes a cache lock so two runs never overlap (the
    second returns at once with ``skipped`` set); a dry run needs no lock.
    """
    now = now or timezone.now()
    holds = active_holds()
    result = RunResult(dry_run=dry_run, holds=holds)
    if not dry_run and not cache.add(_LOCK_KEY, 1, timeout=conf.retention_lock_seconds()):
        result.skipped = "another retention run is in progress"
        return result
    try:
        settings_obj = org.get_settings()
        for purge in registered():
            days, cutoff = _cutoff(settings_obj, purge, now)
            expired = purge.expired(cutoff)
            item = PurgeResult(purge.name, purge.label, days, cutoff)
            result.results.append(item)
            if holds.organization:
                item.held = expired.count()
                continue
            eligible = purge.exclude_held(expired, holds)
            if dry_run:
                item.deleted = eligible.count()
                item.held = expired.count() - item.deleted
                continue
            item.partitions, item.deleted = _drop_partitions(purge, eligible, cutoff)
            deleted, finished = _purge_batches(purge, eligible)
            item.deleted += deleted
            if not finished:
                item.remaining = eligible.count()
            item.held = expired.count() - item.remaining
        if not dry_run:
            audit.record("retention.purge", details=result.as_details())
            logger.info("retention purge: %s", {r.name: r.deleted for r in result.results})
    finally:
        if not dry_run:
            cache.delete(_LOCK_KEY)
    return result
