"""Saved views: a user's named contacts-page filters (issue 20). Never a name search."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpRequest

from contacts.models import SavedView
from contacts.services.errors import ContactsError
from luxmail import audit
from luxmail.actors import Actor

ALLOWED_PARAMS = frozenset({"status", "contact_list", "tag", "consent", "suppressed", "reason"})
MAX_VIEWS = 50


class SavedViewError(ContactsError):
    pass


def saved_view_save(
    *, owner: Any, name: str, params: dict[str, str], request: HttpRequest | None = None
) -> SavedView:
    """Create or replace ``owner``'s view called ``name``; only known filter keys are kept.

    Raises :class:`SavedViewError` for a blank name or past :data:`MAX_VIEWS` views.
    """
    cleaned = " ".join(str(name).split())[:100]
    if not cleaned:
        raise SavedViewError("Give the view a name.")
    kept = {k: str(v)[:100] for k, v in params.items() if k in ALLOWED_PARAMS and v}
    with transaction.atomic():
        view = SavedView.objects.filter(owner=owner, name=cleaned).first()
        if view is None:
            if SavedView.objects.filter(owner=owner).count() >= MAX_VIEWS:
                raise SavedViewError(f"You have {MAX_VIEWS} saved views: delete one first.")
            view = SavedView(owner=owner, name=cleaned)
        view.params = kept
        view.save()
        audit.record("contacts.view_save", actor=owner, request=request, target=view)
    return view


def saved_view_delete(*, view: SavedView, actor: Actor, request: HttpRequest | None = None) -> None:
    with transaction.atomic():
        audit.record("contacts.view_delete", actor=actor, request=request, target=view)
        view.delete()
