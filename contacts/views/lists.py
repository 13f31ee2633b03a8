"""Static lists: create, rename, delete, members (masked unless PHI role)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from contacts import services
from contacts.forms import ContactListForm, ListAddMemberForm
from contacts.models import ContactList
from contacts.views import selectors as ui
from contacts.views.people import PAGE_SIZE, _identities


@never_cache
@login_required
@permission_required("contacts.view_contactlist", raise_exception=True)
def list_index(request: HttpRequest) -> HttpResponse:
    form = ContactListForm(request.POST or None)
    if request.method == "POST":
        if not request.user.has_perm("contacts.add_contactlist"):
            return HttpResponse("Your role cannot create lists.", status=403)
        if form.is_valid():
            try:
                created = services.contact_list_create(
                    name=form.cleaned_data["name"],
                    description=form.cleaned_data["description"],
                    actor=request.user,
                    request=request,
                )
            except services.ListError as error:
                form.add_error("name", error.message)
            else:
                messages.success(request, f"List “{created.name}” created.")
                return redirect("contacts:list_detail", list_id=created.pk)
    return render(
        request,
        "contacts/lists.html",
        {"nav": "contacts", "lists": ui.lists_with_counts(), "form": form},
    )


@never_cache
@login_required
@permission_required("contacts.view_contactlist", raise_exception=True)
def list_detail(request: HttpRequest, list_id: int) -> HttpResponse:
    contact_list = get_object_or_404(ContactList, pk=list_id)
    rename = ContactListForm(
        initial={"name": contact_list.name, "description": contact_list.description}
    )
    add_form = ListAddMemberForm()
    page = Paginator(
        ui.contacts_filtered(contact_list=contact_list).select_related("profile"), PAGE_SIZE
    ).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    identities = _identities(request, rows)
    return render(
        request,
        "contacts/list_detail.html",
        {
            "nav": "contacts",
            "contact_list": contact_list,
            "rename": rename,
            "add_form": add_form,
            "page": page,
            "rows": [(c, identities[c.pk]) for c in rows],
        },
    )


@login_required
@permission_required("contacts.change_contactlist", raise_exception=True)
@require_POST
def list_rename(request: HttpRequest, list_id: int) -> HttpResponse:
    contact_list = get_object_or_404(ContactList, pk=list_id)
    form = ContactListForm(request.POST)
    if form.is_valid():
        try:
            services.contact_list_update(
                contact_list=contact_list,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                actor=request.user,
                request=request,
            )
        except services.ListError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, "List saved.")
    else:
        messages.error(request, "Give the list a name.")
    return redirect("contacts:list_detail", list_id=contact_list.pk)


@login_required
@permission_required("contacts.delete_contactlist", raise_exception=True)
@require_POST
def list_delete(request: HttpRequest, list_id: int) -> HttpResponse:
    contact_list = get_object_or_404(ContactList, pk=list_id)
    try:
        services.contact_list_delete(contact_list=contact_list, actor=request.user, request=request)
    except services.ListError as error:
        messages.error(request, error.message)
        return redirect("contacts:list_detail", list_id=contact_list.pk)
    messages.success(request, "List deleted; its contacts are kept.")
    return redirect("contacts:lists")


@login_required
@permission_required("contacts.change_contactlist", raise_exception=True)
@require_POST
def list_member_add(request: HttpRequest, list_id: int) -> HttpResponse:
    contact_list = get_object_or_404(ContactList, pk=list_id)
    form = ListAddMemberForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give a valid email address.")
        return redirect("contacts:list_detail", list_id=contact_list.pk)
    contact = ui.contact_find_by_email(
        email=form.cleaned_data["email"], actor=request.user, request=request
    )
    if contact is None:
        messages.error(request, "No contact has this email address.")
    else:
        added = services.list_members_add(
            contact_list=contact_list, contact_ids=[contact.pk], actor=request.user, request=request
        )
        messages.success(
            request, "Contact added." if added else "The contact was already in the list."
        )
    return redirect("contacts:list_detail", list_id=contact_list.pk)


@login_required
@permission_required("contacts.change_contactlist", raise_exception=True)
@require_POST
def list_members_remove(request: HttpRequest, list_id: int) -> HttpResponse:
    contact_list = get_object_or_404(ContactList, pk=list_id)
    ids = [int(v) for v in request.POST.getlist("contact") if v.isdigit()]
    if not ids:
        messages.error(request, "Tick the contacts to remove.")
    else:
        removed = services.list_members_remove(
            contact_list=contact_list, contact_ids=ids, actor=request.user, request=request
        )
        messages.success(request, f"{removed} contact(s) removed from the list.")
    return redirect("contacts:list_detail", list_id=contact_list.pk)
