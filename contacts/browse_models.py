"""Tags, bulk-action jobs and saved views of the contacts page (issue 20).

Kept beside ``contacts/models.py`` (which imports them so Django registers them here).
None of these rows holds PHI: tags are labels staff choose (their names are shown in
lists and the API, so they must not be PHI — docs/security.md), a bulk job stores
contact ids and a filter whose name search is already reduced to blind-index tokens,
and a saved view keeps only non-PHI filter parameters.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Tag(models.Model):
    """A label staff attach to contacts ("VIP", "Needs call-back"); never PHI."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=60, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ContactTag(models.Model):
    contact = models.ForeignKey("contacts.Contact", on_delete=models.CASCADE, related_name="tags")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="contact_tags")
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["contact"], name="contacts_contacttag_contact")]
        constraints = [
            models.UniqueConstraint(fields=["tag", "contact"], name="contact_tag_unique")
        ]

    def __str__(self) -> str:
        return f"tag #{self.tag_id} on contact #{self.contact_id}"


class BulkAction(models.TextChoices):
    ADD_TO_LIST = "add_to_list", "Add to list"
    TAG = "tag", "Tag"
    UNTAG = "untag", "Remove tag"
    SUPPRESS = "suppress", "Suppress"
    DELETE = "delete", "Delete"
    EXPORT = "export", "Export to CSV"


class BulkJobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class BulkJob(models.Model):
    """One bulk action over a selection or a whole filter result, run by a Celery task.

    ``contact_ids`` (a selection) or ``query`` (a filter, see ``contacts/search.py``
    ``ContactQuery.as_spec``) says which contacts; the task walks them in keyset batches
    and updates ``processed`` so the page can show progress. ``params`` holds the list
    id, tag id or suppression reason; an export keeps there the ids it froze (the file is
    generated on download, see ``contacts/bulk_export.py``). No PHI anywhere in
    the row.
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    action = models.CharField(max_length=16, choices=BulkAction.choices)
    status = models.CharField(
        max_length=16, choices=BulkJobStatus.choices, default=BulkJobStatus.QUEUED
    )
    params = models.JSONField(default=dict, blank=True)
    contact_ids = models.JSONField(null=True, blank=True, help_text="A selection, or null.")
    query = models.JSONField(null=True, blank=True, help_text="A filter spec, or null.")
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    cursor = models.BigIntegerField(null=True, blank=True, help_text="Last contact id done.")
    failure = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"Bulk {self.action} #{self.pk} ({self.status})"


class SavedView(models.Model):
    """A user's named set of contacts-page filters (never a name search: that is PHI)."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="contact_views"
    )
    name = models.CharField(max_length=100)
    params = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="saved_view_unique_name")
        ]

    def __str__(self) -> str:
        return self.name
