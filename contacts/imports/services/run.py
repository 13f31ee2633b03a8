"""Confirm and run: the all-or-nothing import of a confirmed job."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from contacts import jobs
from contacts import services as contact_services
from contacts.imports import columns, files
from contacts.imports.services.common import (
    ImportAborted,
    ImportMappingError,
    ImportStateError,
    _fail,
    _progress,
    import_notify,
    may_import_phi,
    progress_key,
)
from contacts.imports.services.rows import _attach, _dry_run, _Errors, _row_batches
from contacts.keys.services import contact_key_store_validated
from contacts.models import (
    Consent,
    ConsentSource,
    Contact,
    ImportJob,
    ImportJobStatus,
)
from contacts.segments import consent_present_q
from contacts.services import ContactsError
from luxmail import audit, collector, crypto
from luxmail.actors import Actor

logger = logging.getLogger(__name__)


def import_job_confirm(
    *, job: ImportJob, actor: Actor, skip_invalid: bool = False, request: HttpRequest | None = None
) -> ImportJob:
    """Queue the import of a previewed job (Celery, job id only).

    With row errors in the preview the user must choose ``skip_invalid`` (import the
    other rows) or fix the file. Raises :class:`ImportStateError` or
    :class:`ImportMappingError` (PHI columns without the permission).
    """
    with transaction.atomic():
        locked = ImportJob.objects.select_for_update().get(pk=job.pk)
        if locked.status != ImportJobStatus.PREVIEWED:
            raise ImportStateError("Only a checked import can be started.")
        if locked.includes_phi and not may_import_phi(actor):
            raise ImportMappingError(["Importing PHI columns needs the PHI Marketer role."])
        if locked.preview.get("valid", 0) == 0:
            raise ImportStateError("No row of this file can be imported; fix the file first.")
        if locked.error_count and not skip_invalid:
            raise ImportStateError(
                "Some rows have errors: fix the file and upload it again, or choose to "
                "import only the rows without errors."
            )
        locked.options = {**locked.options, "skip_invalid": bool(skip_invalid)}
        locked.status = ImportJobStatus.QUEUED
        locked.save()
        _progress(locked.pk, "queued", 0, locked.total_rows)
        transaction.on_commit(lambda: jobs.IMPORT_RUN.delay(locked.pk))
    return locked


def _claim(job_id: int) -> ImportJob | None:
    """Mark a queued job running (a redelivered task may find it running already)."""
    with transaction.atomic():
        job = (
            ImportJob.objects.select_for_update(of=("self",))
            .select_related("created_by", "contact_list")
            .filter(pk=job_id)
            .first()
        )
        if job is None or job.status not in (ImportJobStatus.QUEUED, ImportJobStatus.RUNNING):
            return None
        job.status = ImportJobStatus.RUNNING
        job.started_at = job.started_at or timezone.now()
        job.save(update_fields=["status", "started_at"])
    return job


@dataclass
class _Outcome:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    granted: int = 0
    revoked: int = 0
    listed: int = 0
    rows: int = 0
    errors: _Errors = field(default_factory=_Errors)


def import_job_run(*, job_id: int) -> None:
    """Import a confirmed job: every batch in one transaction, then delete the file.

    Idempotent per job: a finished job is left alone, and a duplicate delivery waits
    for the row lock of the running one and then finds it finished. On failure the
    job says why (row errors or the kind of failure, never a value) and nothing of
    the file is in the database.
    """
    job = _claim(job_id)
    if job is None:
        return
    actor = job.created_by
    started = time.monotonic()
    try:
        if actor is None or not actor.is_active:
            raise ImportAborted("The person who started this import can no longer import.")
        if job.includes_phi and not may_import_phi(actor):
            raise ImportAborted("Importing PHI columns needs the PHI Marketer role.")
        # Committed on its own, before the write: the decryption of existing contacts
        # for merging stays on record even if the import rolls back.
        access = crypto.phi_access(
            actor=actor,
            purpose="contacts.import",
            details={"import": job.pk, "rows": job.total_rows},
        )
        with transaction.atomic():
            locked = ImportJob.objects.select_for_update().get(pk=job.pk)
            if locked.status != ImportJobStatus.RUNNING:
                return
            with collector.heap_frozen():
                outcome = _write(job, actor, access)
            errors, error_count = outcome.errors.dicts(), outcome.errors.count
            audit.record(
                "contacts.import",
                actor=actor,
                target=locked,
                phi=locked.includes_phi,
                details={
                    "job": locked.pk,
                    "rows": outcome.rows,
                    "created": outcome.created,
                    "updated": outcome.updated,
                    "unchanged": outcome.unchanged,
                    "skipped": outcome.skipped,
                    "consents_granted": outcome.granted,
                    "consents_revoked": outcome.revoked,
                    "list": locked.contact_list_id,
                    "phi": locked.includes_phi,
                },
            )
            locked.status = ImportJobStatus.SUCCEEDED
            locked.total_rows = outcome.rows
            locked.processed_rows = outcome.rows
            locked.created_count = outcome.created
            locked.updated_count = outcome.updated
            locked.unchanged_count = outcome.unchanged
            locked.skipped_count = outcome.skipped
            locked.errors = errors
            locked.error_count = error_count
            locked.details = {
                "consents_granted": outcome.granted,
                "consents_revoked": outcome.revoked,
                "list_added": outcome.listed,
                "seconds": round(time.monotonic() - started, 1),
            }
            locked.finished_at = timezone.now()
            locked.save()
            if error_count:
                import_notify(job=locked, failed=False, error_count=error_count)
    except ImportAborted as aborted:
        _fail(job, aborted.message, aborted.errors, aborted.count)
    except ContactsError as error:
        _fail(job, f"{error.message} Nothing was imported.")
    except Exception as error:
        # The exception text may quote database values; only its type is kept.
        logger.error("contact import %s failed: %s", job.pk, type(error).__name__)
        _fail(
            job,
            f"The import stopped with an unexpected error ({type(error).__name__}). "
            "Nothing was imported; try again or ask an administrator.",
        )
    finally:
        files.delete(job.file_path)
        ImportJob.objects.filter(pk=job.pk).update(file_path="")
        cache.delete(progress_key(job.pk))


def _write(job: ImportJob, actor: Actor, access: crypto.Access) -> _Outcome:
    """Stream the file and write it batch by batch; consents and list membership follow
    each batch.

    Nothing of one batch is kept for the next (bounded memory); every batch runs inside
    the caller's transaction, so an abort still rolls the whole file back. Without
    ``skip_invalid`` the first row with an error aborts the import (the rest of the file
    is still read, to count and list its errors); with it, rows with errors are skipped
    and reported, and the others are imported.
    """
    skip_invalid = bool(job.options.get("skip_invalid"))
    outcome = _Outcome()
    errors = outcome.errors
    expected = job.total_rows
    aborting = False
    # The check read this very file: when it found no error there is no duplicate to
    # look for again (the check's duplicate table is a query per batch).
    for batch in _row_batches(job, check_duplicates=job.error_count > 0):
        rows = batch.rows
        outcome.rows += len(rows)
        if aborting or (not skip_invalid and any(r.errors for r in rows)):
            # Only the errors matter now: count them all, keep the first.
            aborting = True
            errors.add(rows)
            continue
        good = [r for r in rows if not r.errors]
        if len(good) != len(rows):
            # As in the check: every row that does not repeat an earlier one gets all
            # of its problems listed, so the counts match the check page's.
            candidates = [r for r in rows if r.number not in batch.duplicates]
            _attach(candidates, _dry_run(candidates, actor).errors)
            good = [r for r in rows if not r.errors]
        result = _upsert(good, actor, access)
        if result.errors and skip_invalid:
            # The database may have changed since the preview (an external id taken
            # meanwhile): such rows are skipped too, and reported; the others are written.
            _attach(good, result.errors)
            good = [r for r in good if not r.errors]
            result = _upsert(good, actor, access)
        if result.errors:
            _attach(good, result.errors)
            first = next(r for r in good if r.errors)
            raise ImportAborted(
                f"Row {first.number} could not be imported ({first.errors[-1].message}); "
                "nothing was imported.",
                [e for r in good for e in r.errors],
            )
        errors.add(rows)
        outcome.created += result.created
        outcome.updated += result.updated
        outcome.unchanged += result.unchanged
        consent_of: dict[int, columns.ConsentPlan] = {}
        for row, contact_id in zip(good, result.contact_ids, strict=True):
            if row.consent:
                consent_of[contact_id] = row.consent
            if row.keys:
                _store_keys(contact_id, row.keys, actor)
        granted, revoked = _apply_consents(job, consent_of, actor)
        outcome.granted += granted
        outcome.revoked += revoked
        if job.contact_list is not None and result.contact_ids:
            outcome.listed += contact_services.list_members_add(
                contact_list=job.contact_list, contact_ids=result.contact_ids, actor=actor
            )
        _progress(job.pk, "writing", outcome.rows, max(expected, outcome.rows))
    if aborting:
        problem = errors.first
        assert problem is not None
        raise ImportAborted(
            f"Row {problem.row} has an error ({problem.message}); nothing was imported.",
            errors.kept,
            count=errors.count,
        )
    outcome.skipped = errors.bad_rows
    return outcome


def _upsert(
    rows: Sequence[columns.PreparedRow], actor: Actor, access: crypto.Access
) -> contact_services.BulkUpsertResult:
    """Write ``rows`` (nothing is written when any of them has an error)."""
    if not rows:
        return contact_services.BulkUpsertResult()
    return contact_services.contacts_bulk_upsert(
        rows=[r.data for r in rows],
        actor=actor,
        source="import",
        first_row_number=0,
        access=access,
        record_event=False,
    )


def _store_keys(contact_id: int, keys: Sequence[Any], actor: Actor) -> None:
    """The row's encryption keys (validated against its address while preparing)."""

    contact = Contact.objects.get(pk=contact_id)
    for validated in keys:
        contact_key_store_validated(
            contact=contact, validated=validated, actor=actor, source="import"
        )


def _chunks(ids: Sequence[int], size: int = 2000) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def _apply_consents(
    job: ImportJob, plans: dict[int, columns.ConsentPlan], actor: Actor
) -> tuple[int, int]:
    """Grant where no consent is present, revoke where one is; returns the counts."""
    if not plans:
        return 0, 0
    now = timezone.now()
    default_source = job.options.get("consent_source") or ConsentSource.IMPORT
    default_evidence = job.options.get("evidence") or ""
    grants: dict[str, list[int]] = defaultdict(list)
    revokes: dict[str, list[int]] = defaultdict(list)
    for contact_id, plan in plans.items():
        for purpose in plan.grants:
            grants[purpose].append(contact_id)
        for purpose in plan.revokes:
            revokes[purpose].append(contact_id)
    granted = revoked = 0
    for purpose, ids in grants.items():
        present: set[int] = set()
        for chunk in _chunks(ids):
            present.update(
                Contact.objects.filter(pk__in=chunk)
                .filter(consent_present_q(purpose, now))
                .values_list("pk", flat=True)
            )
        groups: dict[tuple[str, str, dt.datetime | None], list[int]] = defaultdict(list)
        for contact_id in ids:
            if contact_id in present:
                continue
            plan = plans[contact_id]
            key = (
                plan.source or default_source,
                plan.evidence or default_evidence,
                plan.grants[purpose],
            )
            groups[key].append(contact_id)
        for (source, evidence, granted_at), members in groups.items():
            for chunk in _chunks(members, 5000):
                granted += len(
                    contact_services.consent_grant_many(
                        contact_ids=chunk,
                        purpose=purpose,
                        source=source,
                        evidence_ref=evidence,
                        granted_at=granted_at,
                        actor=actor,
                    )
                )
    for purpose, ids in revokes.items():
        for chunk in _chunks(ids, 5000):
            holding = list(
                Consent.objects.filter(contact_id__in=chunk, purpose=purpose, revoked_at=None)
                .values_list("contact_id", flat=True)
                .distinct()
            )
            if holding:
                revoked += contact_services.consent_revoke_many(
                    contact_ids=holding, purpose=purpose, actor=actor, source="import"
                )
    return granted, revoked
