"""Bulk actions on contacts, run as background jobs with progress and audit (issue 20).

:func:`bulk_job_start` checks the request and records a :class:`BulkJob` (a selection of
ids or a filter spec from ``contacts/search.py`` — never PHI) and queues
``contacts.bulk_run`` with the job id after commit. :func:`bulk_job_run` works through
the contacts in keyset batches of :data:`BATCH` ids, each batch in its own transaction
with the job's progress, and re-queues itself after :data:`BATCHES_PER_RUN` batches so no
task runs unbounded. It is idempotent: a batch already done is past the job's cursor.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from contacts import jobs, search
from contacts.models import (
    BulkAction,
    BulkJob,
    BulkJobStatus,
    Contact,
    ContactList,
    SuppressionReason,
    Tag,
)
from contacts.services import contacts as contact_services
from contacts.services import lists, suppression, tags
from contacts.services.errors import ContactsError
from luxmail import audit
from luxmail.actors import Actor, user_of

logger = logging.getLogger(__name__)

BATCH = 500
BATCHES_PER_RUN = 20
MAX_SELECTION = 10_000
MAX_EXPORT = 100_000


class BulkError(ContactsError):
    pass


def _params(action: str, params: dict[str, Any]) -> dict[str, Any]:
    """The validated parameters of ``action`` (ids of rows that exist)."""
    if action == BulkAction.ADD_TO_LIST:
        list_id = search.int_or_none(params.get("list_id"))
        if list_id is None or not ContactList.objects.filter(pk=list_id).exists():
            raise BulkError("Choose the list to add the contacts to.")
        return {"list_id": list_id}
    if action in (BulkAction.TAG, BulkAction.UNTAG):
        tag_id = search.int_or_none(params.get("tag_id"))
        if tag_id is None or not Tag.objects.filter(pk=tag_id).exists():
            raise BulkError("Choose the tag.")
        return {"tag_id": tag_id}
    if action == BulkAction.SUPPRESS:
        reason = str(params.get("reason") or SuppressionReason.MANUAL)
        if reason not in SuppressionReason.values:
            raise BulkError("Choose a suppression reason.")
        note = str(params.get("note") or "")[:500]
        return {"reason": reason, "note": note}
    if action == BulkAction.EXPORT:
        return {"phi": params.get("phi") is True, "ids": []}
    if action == BulkAction.DELETE:
        if params.get("confirm") is not True:
            raise BulkError("Deleting contacts needs your confirmation.")
        return {"confirm": True}
    raise BulkError("Choose an action.")


def bulk_job_start(
    *,
    action: str,
    params: dict[str, Any],
    actor: Actor,
    contact_ids: list[Any] | None = None,
    query: search.ContactQuery | None = None,
    request: HttpRequest | None = None,
) -> BulkJob:
    """Record a bulk job over a selection (``contact_ids``) or a filter (``query``).

    Ids that are not contacts are dropped (a forged id changes nothing). Raises
    :class:`BulkError` when the action or its parameters are invalid, when nothing is
    selected or nothing matches, or when a selection exceeds :data:`MAX_SELECTION`.
    Audits ``contacts.bulk_start``; the task starts after commit.
    """
    cleaned = _params(action, params)
    if (contact_ids is None) == (query is None):
        raise BulkError("Select contacts, or apply the action to the whole filter result.")
    ids: list[int] | None = None
    if contact_ids is not None:
        if len(contact_ids) > MAX_SELECTION:
            raise BulkError(f"Select at most {MAX_SELECTION:,} contacts, or use the filter.")
        wanted = {pk for pk in (search.int_or_none(item) for item in contact_ids) if pk}
        ids = sorted(Contact.objects.filter(pk__in=wanted).values_list("pk", flat=True))
        total = len(ids)
    else:
        assert query is not None
        total = search.contacts_matching(query).count()
    if total == 0:
        raise BulkError("No contacts are selected: nothing to do.")
    if action == BulkAction.EXPORT and total > MAX_EXPORT:
        raise BulkError(f"Export at most {MAX_EXPORT:,} contacts at a time: narrow the filter.")
    with transaction.atomic():
        job = BulkJob.objects.create(
            action=action,
            params=cleaned,
            contact_ids=ids,
            query=query.as_spec() if query is not None else None,
            total=total,
            created_by=user_of(actor),
        )
        audit.record(
            "contacts.bulk_start",
            actor=actor,
            request=request,
            target=job,
            details={"action": action, "total": total, "by": "selection" if ids else "filter"},
        )
        transaction.on_commit(lambda: jobs.BULK_RUN.delay(job.pk))
    return job


def _batch(job: BulkJob) -> list[int]:
    """The next ids to do, descending, after the job's cursor."""
    if job.contact_ids is not None:
        pending = [pk for pk in job.contact_ids if job.cursor is None or pk < job.cursor]
        return sorted(pending, reverse=True)[:BATCH]
    found = search.contacts_matching(search.ContactQuery.from_spec(job.query or {}))
    if job.cursor is not None:
        found = found.filter(pk__lt=job.cursor)
    return list(found.values_list("pk", flat=True)[:BATCH])


def _apply(job: BulkJob, ids: list[int], actor: Actor) -> tuple[int, int]:
    """Do the action on one batch; returns ``(changed, skipped)``."""
    params = job.params
    if job.action == BulkAction.EXPORT:
        # Freeze who is in the export now; the CSV is written (and audited) on download.
        live = sorted(Contact.objects.filter(pk__in=ids).values_list("pk", flat=True))
        params["ids"] = sorted({*params.get("ids", []), *live})
        return len(live), len(ids) - len(live)
    if job.action == BulkAction.ADD_TO_LIST:
        contact_list = ContactList.objects.get(pk=params["list_id"])
        live = list(Contact.objects.filter(pk__in=ids).values_list("pk", flat=True))
        added = lists.list_members_add(contact_list=contact_list, contact_ids=live, actor=actor)
        return added, len(ids) - added
    if job.action == BulkAction.TAG:
        tag = Tag.objects.get(pk=params["tag_id"])
        added = tags.contacts_tag(tag=tag, contact_ids=ids, actor=actor)
        return added, len(ids) - added
    if job.action == BulkAction.UNTAG:
        tag = Tag.objects.get(pk=params["tag_id"])
        removed = tags.contacts_untag(tag=tag, contact_ids=ids, actor=actor)
        return removed, len(ids) - removed
    changed = 0
    for contact in Contact.objects.filter(pk__in=ids).order_by("-pk"):
        if job.action == BulkAction.SUPPRESS:
            _, created = suppression.suppression_add(
                contact=contact, reason=params["reason"], note=params.get("note", ""), actor=actor
            )
            changed += created
        else:
            try:
                contact_services.contact_delete(contact=contact, actor=actor)
            except contact_services.ContactHeld:
                continue
            changed += 1
    return changed, len(ids) - changed


def bulk_job_run(*, job_id: int) -> None:
    """Do up to :data:`BATCHES_PER_RUN` batches of a job, then re-queue or finish.

    Each batch commits with the job's cursor and counts, so a worker that dies loses at
    most one batch (which the next run redoes: every action is idempotent). A
    :class:`ContactsError` (e.g. the list was deleted meanwhile) fails the job with its
    message. Audits ``contacts.bulk_finish`` with the counts.
    """
    job = BulkJob.objects.filter(pk=job_id).first()
    if job is None or job.status in (BulkJobStatus.SUCCEEDED, BulkJobStatus.FAILED):
        return
    actor = job.created_by or f"bulk-job:{job.pk}"
    if job.status == BulkJobStatus.QUEUED:
        BulkJob.objects.filter(pk=job.pk).update(
            status=BulkJobStatus.RUNNING, started_at=timezone.now()
        )
    for _ in range(BATCHES_PER_RUN):
        ids = _batch(job)
        if not ids:
            _finish(job, actor, BulkJobStatus.SUCCEEDED)
            return
        try:
            with transaction.atomic():
                changed, skipped = _apply(job, ids, actor)
                job.cursor = ids[-1]
                job.processed += len(ids)
                job.changed += changed
                job.skipped += skipped
                job.save(update_fields=["cursor", "processed", "changed", "skipped", "params"])
        except (ContactsError, ContactList.DoesNotExist, Tag.DoesNotExist) as error:
            job.failure = getattr(error, "message", "The list or tag no longer exists.")[:500]
            _finish(job, actor, BulkJobStatus.FAILED)
            return
    jobs.BULK_RUN.delay(job.pk)


def _finish(job: BulkJob, actor: Actor, status: str) -> None:
    with transaction.atomic():
        job.status = status
        job.finished_at = timezone.now()
        job.total = (
            max(job.total, job.processed) if status == BulkJobStatus.SUCCEEDED else job.total
        )
        job.save(update_fields=["status", "finished_at", "failure", "total"])
        audit.record(
            "contacts.bulk_finish",
            actor=actor,
            target=job,
            details={
                "action": job.action,
                "status": status,
                "processed": job.processed,
                "changed": job.changed,
                "skipped": job.skipped,
            },
        )
    logger.info("bulk job %s %s: %s processed", job.pk, status, job.processed)
