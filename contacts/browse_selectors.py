"""Reads of the contacts page (issue 20): tags, saved views and bulk jobs per user."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Count, QuerySet

from contacts.models import BulkJob, ContactTag, SavedView, Tag


def tags_with_counts() -> list[Tag]:
    """Every tag with ``contacts`` (how many contacts carry it), by name."""
    return list(Tag.objects.annotate(contacts=Count("contact_tags")).order_by("name"))


def tag_names_of(*, contact_ids: Iterable[int]) -> dict[int, list[str]]:
    """The tag names of each contact (for a page of rows)."""
    names: dict[int, list[str]] = {}
    for contact_id, name in (
        ContactTag.objects.filter(contact_id__in=list(contact_ids))
        .order_by("tag__name")
        .values_list("contact_id", "tag__name")
    ):
        names.setdefault(contact_id, []).append(name)
    return names


def saved_views_of(*, user_id: Any) -> QuerySet[SavedView]:
    return SavedView.objects.filter(owner_id=user_id).order_by("name")


def saved_view_of(*, user_id: Any, view_uuid: Any) -> SavedView | None:
    """The user's own saved view, or ``None`` (another user's view is never found)."""
    return SavedView.objects.filter(owner_id=user_id, uuid=view_uuid).first()


def bulk_jobs_recent(*, user_id: Any, limit: int = 3) -> list[BulkJob]:
    return list(BulkJob.objects.filter(created_by_id=user_id).order_by("-id")[:limit])


def bulk_jobs_visible(*, user_id: Any, see_all: bool) -> QuerySet[BulkJob]:
    """Staff see their own bulk jobs; Admins (``see_all``) everyone's."""
    jobs = BulkJob.objects.all()
    return jobs if see_all else jobs.filter(created_by_id=user_id)
