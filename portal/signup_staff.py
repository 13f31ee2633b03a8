"""Staff pages that build sign-up forms and authorization versions (``/signup-forms/``,
behind the MFA gate). Views parse a Django form, call one service and render; building
needs ``contacts.add_consent``."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from contacts import signup_selectors as selectors
from contacts.models import (
    CORE_ELEMENTS,
    AuthorizationVersion,
    ContactList,
    SignupForm,
    SignupSettings,
    SubmissionStatus,
)
from contacts.services import authorizations, signup

PERMISSION = "contacts.add_consent"


class SignupFormForm(forms.ModelForm):
    class Meta:
        model = SignupForm
        fields = [
            "name",
            "slug",
            "title",
            "intro",
            "fields",
            "required_fields",
            "lists",
            "marketing_text",
            "request_phi_marketing",
            "authorization",
            "brand_color",
            "thank_you_text",
            "confirmed_text",
        ]
        widgets = {
            "lists": forms.CheckboxSelectMultiple,
            "brand_color": forms.TextInput(attrs={"type": "color"}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = selectors.field_options()
        # The model keeps these as JSON lists; staff pick them from the known attributes.
        self.fields["fields"] = forms.MultipleChoiceField(
            choices=options,
            required=False,
            widget=forms.CheckboxSelectMultiple,
            label="Fields asked",
        )
        self.fields["required_fields"] = forms.MultipleChoiceField(
            choices=options,
            required=False,
            widget=forms.CheckboxSelectMultiple,
            label="Required fields",
        )
        self.fields["lists"].queryset = ContactList.objects.order_by("name")  # type: ignore[attr-defined]
        self.fields["authorization"].queryset = AuthorizationVersion.objects.filter(  # type: ignore[attr-defined]
            published_at__isnull=False
        )


class AuthorizationForm(forms.Form):
    name = forms.CharField(max_length=200)
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 12}))
    expires_after_days = forms.IntegerField(required=False, min_value=1, max_value=3650)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for key, label in CORE_ELEMENTS.items():
            self.fields[f"element_{key}"] = forms.BooleanField(
                required=False, label=f"Addressed: {label}"
            )

    def checklist(self) -> dict[str, bool]:
        return {key: bool(self.cleaned_data.get(f"element_{key}")) for key in CORE_ELEMENTS}


class SettingsForm(forms.ModelForm):
    class Meta:
        model = SignupSettings
        fields = ["frame_ancestors", "preferences_intro", "preferences_footer", "languages"]


@login_required
@permission_required(PERMISSION, raise_exception=True)
def index(request: HttpRequest) -> HttpResponse:
    forms_ = SignupForm.objects.select_related("authorization").order_by("name")
    rows = [
        (
            f,
            f.submissions.filter(status=SubmissionStatus.PENDING).count(),
            f.submissions.filter(status=SubmissionStatus.CONFIRMED).count(),
        )
        for f in forms_
    ]
    versions = [
        (v, authorizations.authorization_missing_elements(v))
        for v in AuthorizationVersion.objects.all()
    ]
    return render(
        request,
        "portal/staff/signup_index.html",
        {"nav": "portal", "rows": rows, "versions": versions},
    )


@login_required
@permission_required(PERMISSION, raise_exception=True)
def form_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    instance = get_object_or_404(SignupForm, pk=pk) if pk else SignupForm()
    form = SignupFormForm(request.POST or None, instance=instance)
    if request.method == "POST" and form.is_valid():
        try:
            saved = form.save(commit=False)
            authorizations.form_save(form=saved, actor=request.user)
            form.save_m2m()
        except signup.SignupError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, "Form saved.")
            return redirect("portal:signup_forms")
    return render(
        request,
        "portal/staff/signup_edit.html",
        {"nav": "portal", "form": form, "title": "Sign-up form", "instance": instance},
    )


@login_required
@permission_required(PERMISSION, raise_exception=True)
@require_POST
def form_publish(request: HttpRequest, pk: int) -> HttpResponse:
    form = get_object_or_404(SignupForm, pk=pk)
    try:
        if request.POST.get("publish") == "0":
            authorizations.form_unpublish(form=form, actor=request.user)
        else:
            authorizations.form_publish(form=form, actor=request.user)
    except signup.SignupError as error:
        messages.error(request, error.message)
    return redirect("portal:signup_forms")


@login_required
@permission_required(PERMISSION, raise_exception=True)
def authorization_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    version = get_object_or_404(AuthorizationVersion, pk=pk) if pk else None
    initial: dict[str, Any] = {}
    if version is not None:
        initial = {
            "name": version.name,
            "text": version.text,
            "expires_after_days": version.expires_after_days,
            **{f"element_{k}": v for k, v in version.checklist.items()},
        }
    form = AuthorizationForm(request.POST or None, initial=initial)
    editable = version is None or not (version.published_at or version.used_at)
    if request.method == "POST" and form.is_valid():
        try:
            authorizations.authorization_save(
                name=form.cleaned_data["name"],
                text=form.cleaned_data["text"],
                checklist=form.checklist(),
                expires_after_days=form.cleaned_data["expires_after_days"],
                version=version if editable else None,  # a used version → a new one
                actor=request.user,
            )
        except signup.SignupError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, "Authorization saved.")
            return redirect("portal:signup_forms")
    return render(
        request,
        "portal/staff/signup_edit.html",
        {
            "nav": "portal",
            "form": form,
            "title": "Authorization",
            "note": ""
            if editable
            else "This version is published and cannot change: saving creates a new version.",
        },
    )


@login_required
@permission_required(PERMISSION, raise_exception=True)
@require_POST
def authorization_publish(request: HttpRequest, pk: int) -> HttpResponse:
    version = get_object_or_404(AuthorizationVersion, pk=pk)
    try:
        authorizations.authorization_publish(version=version, actor=request.user)
        messages.success(request, "Authorization published.")
    except signup.SignupError as error:
        messages.error(request, error.message)
    return redirect("portal:signup_forms")


@login_required
@permission_required(PERMISSION, raise_exception=True)
def settings_edit(request: HttpRequest) -> HttpResponse:
    form = SettingsForm(request.POST or None, instance=selectors.signup_settings())
    if request.method == "POST" and form.is_valid():
        authorizations.settings_save(settings_row=form.save(commit=False), actor=request.user)
        messages.success(request, "Settings saved.")
        return redirect("portal:signup_forms")
    return render(
        request,
        "portal/staff/signup_edit.html",
        {"nav": "portal", "form": form, "title": "Sign-up and preference-center settings"},
    )
