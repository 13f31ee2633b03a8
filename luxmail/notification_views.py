"""Notification pages beyond the list: mark one read, and e-mail preferences."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from luxmail import notifications


class PreferencesForm(forms.Form):
    kinds = forms.MultipleChoiceField(
        label="Also e-mail me when",
        choices=list(notifications.KINDS.items()),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )


@require_POST
@login_required
@permission_required("luxmail.use_app", raise_exception=True)
def notification_read(request: HttpRequest, pk: int) -> HttpResponse:
    """Mark one notification read, then follow its link (if safe) or go back to the list."""
    notifications.mark_read(notification_id=pk, actor=request.user, request=request)
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect("notifications")


@login_required
@permission_required("luxmail.use_app", raise_exception=True)
def notification_preferences(request: HttpRequest) -> HttpResponse:
    user = request.user
    form = PreferencesForm(
        request.POST or None,
        initial={"kinds": notifications.email_kinds(user=user)},  # type: ignore[arg-type]
    )
    if request.method == "POST" and form.is_valid():
        notifications.preferences_set(
            user=user,  # type: ignore[arg-type]
            kinds=form.cleaned_data["kinds"],
            actor=user,
            request=request,
        )
        messages.success(request, "Your notification e-mails were saved.")
        return redirect("notification_preferences")
    return render(
        request,
        "notification_preferences.html",
        {"form": form, "nav": "notifications", "has_email": bool(user.email)},  # type: ignore[union-attr]
    )
