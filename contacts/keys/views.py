"""Staff page of a contact's S/MIME certificate and OpenPGP key (``/contacts/<uuid>/keys/``).

Seeing the key list (kind, fingerprint, dates — no material) needs
``contacts.view_contact``; adding or removing one needs ``contacts.change_contact`` and
``luxmail.view_phi``, because the upload is matched against the contact's address (a
mismatch would otherwise tell a non-PHI user what the address is not).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from contacts.keys import selectors, services
from contacts.keys.forms import KeyUploadForm
from contacts.models import Contact, ContactEncryptionKey


def _can_change(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.has_perm("contacts.change_contact") and user.has_perm("luxmail.view_phi"))


@login_required
@permission_required("contacts.view_contact", raise_exception=True)
def index(request: HttpRequest, contact_uuid: Any) -> HttpResponse:
    contact = get_object_or_404(Contact, uuid=contact_uuid)
    form = KeyUploadForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        if not _can_change(request):
            return HttpResponse("Adding keys needs the PHI permission.", status=403)
        if form.is_valid():
            try:
                key = services.contact_key_upload(
                    contact=contact,
                    kind=form.cleaned_data["kind"],
                    data=form.cleaned_data["data"],
                    actor=request.user,
                    request=request,
                )
            except services.KeyMaterialError as error:
                form.add_error(None, error.message)
                status = 400
            else:
                messages.success(
                    request,
                    f"{key.get_kind_display()} added. Messages to this contact are now "
                    "encrypted to it.",
                )
                return redirect("contact_keys:index", contact_uuid=contact.uuid)
        else:
            status = 400
    return render(
        request,
        "contact_keys/index.html",
        {
            "nav": "contacts",
            "contact": contact,
            "keys": selectors.contact_keys(contact=contact),
            "form": form,
            "can_change": _can_change(request),
            "now": timezone.now(),
        },
        status=status,
    )


@require_POST
@login_required
@permission_required("contacts.change_contact", raise_exception=True)
@permission_required("luxmail.view_phi", raise_exception=True)
def remove(request: HttpRequest, contact_uuid: Any, key_uuid: Any) -> HttpResponse:
    key = get_object_or_404(ContactEncryptionKey, uuid=key_uuid, contact__uuid=contact_uuid)
    services.contact_key_remove(key=key, actor=request.user, request=request)
    messages.success(request, f"{key.get_kind_display()} removed; it is no longer used.")
    return redirect("contact_keys:index", contact_uuid=contact_uuid)
