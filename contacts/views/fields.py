"""Custom-field definitions (Admins: they change what every contact can hold)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from contacts import services
from contacts.forms import CustomFieldEditForm, CustomFieldForm
from contacts.models import CustomField

# Field definitions are organization configuration: the Admin's settings permission.
PERMISSION = "luxmail.manage_settings"


@login_required
@permission_required(PERMISSION, raise_exception=True)
def field_index(request: HttpRequest) -> HttpResponse:
    form = CustomFieldForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            created = services.custom_field_create(
                key=form.cleaned_data["key"],
                label=form.cleaned_data["label"],
                kind=form.cleaned_data["kind"],
                phi=form.cleaned_data["phi"],
                choices=form.choice_list(),
                help_text=form.cleaned_data["help_text"],
                actor=request.user,
                request=request,
            )
        except services.CustomFieldError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, f"Field “{created.label}” created.")
            return redirect("contacts:fields")
    return render(
        request,
        "contacts/fields.html",
        {"nav": "contacts", "fields": CustomField.objects.order_by("key"), "form": form},
    )


@login_required
@permission_required(PERMISSION, raise_exception=True)
def field_edit(request: HttpRequest, field_id: int) -> HttpResponse:
    custom = get_object_or_404(CustomField, pk=field_id)
    form = CustomFieldEditForm(
        request.POST or None,
        initial={
            "label": custom.label,
            "choices": "\n".join(custom.choices),
            "help_text": custom.help_text,
        },
    )
    if custom.kind != "choice":
        del form.fields["choices"]
    if request.method == "POST" and form.is_valid():
        try:
            services.custom_field_update(
                custom_field=custom,
                label=form.cleaned_data["label"],
                choices=form.choice_list() if "choices" in form.fields else None,
                help_text=form.cleaned_data["help_text"],
                actor=request.user,
                request=request,
            )
        except services.CustomFieldError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, "Field saved.")
            return redirect("contacts:fields")
    return render(
        request, "contacts/field_edit.html", {"nav": "contacts", "field": custom, "form": form}
    )


@login_required
@permission_required(PERMISSION, raise_exception=True)
@require_POST
def field_delete(request: HttpRequest, field_id: int) -> HttpResponse:
    custom = get_object_or_404(CustomField, pk=field_id)
    try:
        services.custom_field_delete(custom_field=custom, actor=request.user, request=request)
    except services.CustomFieldError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Field deleted.")
    return redirect("contacts:fields")
