"""Contact pages: list (masked unless PHI role), detail with an audited "Show PHI",
create/edit, consent history with grant/revoke, suppression and list memberships."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from contacts import browse_selectors, panels, selectors, services, signup_selectors
from contacts.forms import (
    ConsentGrantForm,
    ConsentRevokeForm,
    ContactForm,
    ListMembershipForm,
    SuppressionAddForm,
    SuppressionRemoveForm,
    contact_initial,
)
from contacts.models import ConsentPurpose, Contact, ContactList, CustomField, Suppression
from contacts.services import signup
from contacts.views import selectors as ui

PAGE_SIZE = 50


def _may_see_phi(request: HttpRequest) -> bool:
    return request.user.has_perm("luxmail.view_phi")


def _identities(request: HttpRequest, contacts: list[Contact]) -> dict[int, dict[str, Any]]:
    """Identity per contact: in clear for PHI roles (audited view), masked otherwise."""
    if _may_see_phi(request):
        return selectors.contacts_phi(contacts=contacts, actor=request.user, request=request)
    masked = selectors.contacts_masked(contacts=contacts, actor=request.user, request=request)
    return {pk: identity.as_dict() for pk, identity in masked.items()}


def _contact(contact_uuid: Any) -> Contact:
    return get_object_or_404(Contact.objects.select_related("profile"), uuid=contact_uuid)


def _detail_context(request: HttpRequest, contact: Contact, **extra: Any) -> dict[str, Any]:
    masked = selectors.contacts_masked(contacts=[contact], actor=request.user, request=request)
    consents = list(
        selectors.contact_consents(contact=contact).select_related("recorded_by", "revoked_by")
    )
    present = {
        purpose: selectors.consent_present(contact=contact, purpose=purpose)
        for purpose in ConsentPurpose.values
    }
    memberships = list(selectors.contact_lists(contact=contact))
    member_ids = {item.pk for item in memberships}
    context: dict[str, Any] = {
        "nav": "contacts",
        "contact": contact,
        "masked": masked[contact.pk],
        "profile": ui.profile_outline(contact=contact),
        "consents": [(c, selectors.consent_is_present(c)) for c in consents],
        "present": [(p, label, present[p]) for p, label in ConsentPurpose.choices],
        "suppressions": list(ui.suppression_history(contact=contact)),
        "suppressed": selectors.is_suppressed(contact=contact),
        "memberships": memberships,
        "grant_form": ConsentGrantForm(),
        "suppress_form": SuppressionAddForm(),
        "unsuppress_form": SuppressionRemoveForm(),
        "list_form": _list_form(member_ids),
        "phi": _may_see_phi(request),
        "revealed": None,
        "panels": panels.rendered(contact=contact, request=request),
        "tag_names": browse_selectors.tag_names_of(contact_ids=[contact.pk]).get(contact.pk, []),
    }
    context.update(extra)
    # Evidence (IP, user agent, signature, notes) is decrypted with the audited "Show PHI".
    context["ledger"] = signup_selectors.consent_ledger(
        contact=contact,
        actor=request.user,
        request=request,
        reveal=context["revealed"] is not None and _may_see_phi(request),
    )
    return context


def _list_form(member_ids: set[int], data: Any = None) -> ListMembershipForm:
    form = ListMembershipForm(data)
    field = form.fields["contact_list"]
    field.queryset = ContactList.objects.exclude(pk__in=member_ids).order_by("name")  # type: ignore[attr-defined]
    return form


@never_cache
@login_required
@permission_required("contacts.view_contact", raise_exception=True)
def contact_detail(request: HttpRequest, contact_uuid: Any) -> HttpResponse:
    contact = _contact(contact_uuid)
    return render(request, "contacts/detail.html", _detail_context(request, contact))


@never_cache
@login_required
@permission_required("luxmail.view_phi", raise_exception=True)
@require_POST
def contact_show_phi(request: HttpRequest, contact_uuid: Any) -> HttpResponse:
    """The explicit "Show PHI" action: one audited read (``contact.view_phi``)."""
    contact = _contact(contact_uuid)
    values = selectors.contact_phi(contact=contact, actor=request.user, request=request)
    custom_labels = {f.key: f.label for f in CustomField.objects.all()}
    revealed = {
        "values": values,
        "custom": [(custom_labels.get(k, k), v) for k, v in (values.get("custom") or {}).items()],
    }
    if request.htmx:  # type: ignore[attr-defined]
        return render(
            request, "contacts/_phi.html", {"contact": contact, "revealed": revealed, "phi": True}
        )
    return render(
        request, "contacts/detail.html", _detail_context(request, contact, revealed=revealed)
    )


@never_cache
@login_required
@permission_required("contacts.add_contact", raise_exception=True)
def contact_create(request: HttpRequest) -> HttpResponse:
    phi = _may_see_phi(request)
    form = ContactForm(request.POST or None, phi=phi, custom_fields=list(CustomField.objects.all()))
    if request.method == "POST" and form.is_valid():
        try:
            contact = services.contact_create(
                data=form.service_data(), actor=request.user, request=request, source="ui"
            )
        except services.ContactInvalid as error:
            _errors_to_form(form, error)
        except services.ContactExists as error:
            form.add_error("email", error.message)
        else:
            messages.success(request, "Contact created.")
            return redirect("contacts:detail", contact_uuid=contact.uuid)
    return render(
        request,
        "contacts/form.html",
        {"nav": "contacts", "form": form, "phi": phi, "contact": None},
    )


def _errors_to_form(form: ContactForm, error: services.ContactInvalid) -> None:
    for problem in error.errors:
        form.add_error(problem.field if problem.field in form.fields else None, problem.message)


@never_cache
@login_required
@permission_required("contacts.change_contact", raise_exception=True)
def contact_edit(request: HttpRequest, contact_uuid: Any) -> HttpResponse:
    contact = _contact(contact_uuid)
    phi = _may_see_phi(request)
    customs = list(CustomField.objects.all())
    if phi:
        # Pre-filling the form decrypts the contact: an audited read with its purpose.
        values = selectors.contacts_phi(
            contacts=[contact], actor=request.user, request=request, purpose="contact.edit"
        )[contact.pk]
        # The decrypted PHI lacks the plain identity columns: without them the form
        # would show External id and Time zone empty.
        plain_identity = {"external_id": contact.external_id, "time_zone": contact.time_zone}
        current = contact_initial({**values, **plain_identity})
    else:
        plain = dict(contact.profile.custom or {}) if hasattr(contact, "profile") else {}
        current = {
            "external_id": contact.external_id or "",
            "time_zone": contact.time_zone or "",
            **{f"custom.{k}": str(v) for k, v in plain.items()},
        }
    form = ContactForm(
        request.POST or None,
        initial=current,
        phi=phi,
        custom_fields=customs,
        editing_masked=not phi,
    )
    if request.method == "POST" and form.is_valid():
        data = form.service_data(current)
        try:
            if data:
                services.contact_update(
                    contact=contact, data=data, actor=request.user, request=request
                )
        except services.ContactInvalid as error:
            _errors_to_form(form, error)
        except services.ContactExists as error:
            form.add_error("email", error.message)
        else:
            messages.success(request, "Contact saved." if data else "Nothing changed.")
            return redirect("contacts:detail", contact_uuid=contact.uuid)
    masked = selectors.contacts_masked(contacts=[contact], actor=request.user, request=request)
    return render(
        request,
        "contacts/form.html",
        {
            "nav": "contacts",
            "form": form,
            "phi": phi,
            "contact": contact,
            "masked": masked[contact.pk],
        },
    )


@login_required
@permission_required("contacts.delete_contact", raise_exception=True)
@require_POST
def contact_delete(request: HttpRequest, contact_uuid: Any) -> HttpResponse:
    contact = _contact(contact_uuid)
    try:
        services.contact_delete(contact=contact, actor=request.user, request=request)
    except services.ContactHeld as error:
        messages.error(request, error.message)
        return redirect("contacts:detail", contact_uuid=contact.uuid)
    messages.success(request, "Contact deleted. Its suppressions, if any, stay in force.")
    return redirect("contacts:index")


# --- consent, suppression, lists ------------------------------------------------------------


def _detail_with_errors(request: HttpRequest, contact: Contact, **forms: Any) -> HttpResponse:
    return render(
        request, "contacts/detail.html", _detail_context(request, contact, **forms), status=400
    )


@login_required
@permission_required("contacts.add_consent", raise_exception=True)
@require_POST
def consent_grant(request: HttpRequest, contact_uuid: Any) -> HttpResponse:
    contact = _contact(contact_uuid)
    form = ConsentGrantForm(request.POST)
    if form.is_valid():
        try:
            services.consent_grant(
                contact=contact,
                purpose=form.cleaned_data["purpose"],
                source=form.cleaned_data["source"],
                evidence_ref=form.cleaned_data["evidence_ref"],
                granted_at=form.granted_at(),
                expires_at=form.expires_at(),
                actor=request.user,
                request=request,
            )
        except services.ConsentError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, "Consent recorded.")
            return redirect("contacts:detail", contact_uuid=contact.uuid)
    return _detail_with_errors(request, contact, grant_form=form)


@login_required
@permission_required("contacts.change_consent", raise_exception=True)
@require_POST
def consent_revoke(request: HttpRequest, contact_uuid: Any) -> HttpResponse:
    contact = _contact(contact_uuid)
    form = ConsentRevokeForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose the consent to revoke.")
        return redirect("contacts:detail", contact_uuid=contact.uuid)
    if form.cleaned_data["purpose"] == "phi_marketing":
        # A HIPAA authorization's revocation is a ledger event with the staff note.
        try:
            count = signup.authorization_revoke(
                contact=contact,
                actor=request.user,
                source="staff",
                note=form.cleaned_data["note"],
                request=request,
            )
        except signup.SignupError as error:
            messages.error(request, error.message)
            return redirect("contacts:detail", contact_uuid=contact.uuid)
    else:
        count = services.consent_revoke(
            contact=contact,
            purpose=form.cleaned_data["purpose"],
            actor=request.user,
            source="staff",
            request=request,
        )
    messages.success(request, "Consent revoked." if count else "There was no consent to revoke.")
    return redirect("contacts:detail", contact_uuid=contact.uuid)


@login_required
@permission_required("contacts.add_suppression", raise_exception=True)
@require_POST
def suppression_add(request: HttpRequest, contact_uuid: Any) -> HttpResponse:
    contact = _contact(contact_uuid)
    form = SuppressionAddForm(request.POST)
    if form.is_valid():
        try:
            _, created = services.suppression_add(
                contact=contact,
                reason=form.cleaned_data["reason"],
                note=form.cleaned_data["note"],
                actor=request.user,
                request=request,
            )
        except services.SuppressionError as error:
            form.add_error(None, error.message)
        else:
            messages.success(
                request, "Address suppressed." if created else "The address was already suppressed."
            )
            return redirect("contacts:detail", contact_uuid=contact.uuid)
    return _detail_with_errors(request, contact, suppress_form=form)


@login_required
@permission_required("contacts.delete_suppression", raise_exception=True)
@require_POST
def suppression_remove(
    request: HttpRequest, contact_uuid: Any, suppression_id: int
) -> HttpResponse:
    contact = _contact(contact_uuid)
    suppression = get_object_or_404(Suppression, pk=suppression_id, email_bidx=contact.email_bidx)
    form = SuppressionRemoveForm(request.POST)
    if form.is_valid():
        try:
            services.suppression_remove(
                suppression=suppression,
                note=form.cleaned_data["note"],
                actor=request.user,
                request=request,
            )
        except services.SuppressionError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, "Suppression lifted.")
            return redirect("contacts:detail", contact_uuid=contact.uuid)
    return _detail_with_errors(request, contact, unsuppress_form=form)


@login_required
@permission_required("contacts.change_contactlist", raise_exception=True)
@require_POST
def membership_add(request: HttpRequest, contact_uuid: Any) -> HttpResponse:
    contact = _contact(contact_uuid)
    form = ListMembershipForm(request.POST)
    if form.is_valid():
        services.list_members_add(
            contact_list=form.cleaned_data["contact_list"],
            contact_ids=[contact.pk],
            actor=request.user,
            request=request,
        )
        messages.success(request, f"Added to “{form.cleaned_data['contact_list'].name}”.")
    else:
        messages.error(request, "Choose a list.")
    return redirect("contacts:detail", contact_uuid=contact.uuid)


@login_required
@permission_required("contacts.change_contactlist", raise_exception=True)
@require_POST
def membership_remove(request: HttpRequest, contact_uuid: Any, list_id: int) -> HttpResponse:
    contact = _contact(contact_uuid)
    contact_list = get_object_or_404(ContactList, pk=list_id)
    services.list_members_remove(
        contact_list=contact_list, contact_ids=[contact.pk], actor=request.user, request=request
    )
    messages.success(request, f"Removed from “{contact_list.name}”.")
    return redirect("contacts:detail", contact_uuid=contact.uuid)
