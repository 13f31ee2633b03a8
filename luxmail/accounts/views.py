"""Sign-in, the second-factor step, enrolment and factor management."""

from __future__ import annotations

import base64
from typing import Any

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from luxmail.accounts import selectors, services
from luxmail.accounts.forms import LoginForm, TokenForm
from luxmail.accounts.passkeys import AccountLocked
from luxmail.accounts.sso import services as sso_services


def _next_url(request: HttpRequest) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse("dashboard")


def _with_next(name: str, next_url: str) -> str:
    return f"{reverse(name)}?{urlencode({'next': next_url})}"


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["expired"] = "expired" in self.request.GET
        # Single sign-on buttons (luxmail/accounts/sso/) and a failed SSO round trip.
        context["sso_buttons"] = sso_services.buttons()
        context["sso_failed"] = self.request.GET.get("sso") == "failed"
        return context


def locked_out(
    request: HttpRequest, credentials: Any = None, *args: Any, **kwargs: Any
) -> HttpResponse:
    """django-axes lockout response (AXES_LOCKOUT_CALLABLE), also used at the MFA step."""
    if request.user.is_authenticated:
        logout(request)
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    if request.content_type == "application/json" or request.path.startswith("/webauthn/"):
        # The passkey script shows ``detail`` next to its button.

        return JsonResponse(
            {"detail": str(AccountLocked.default_detail), "code": AccountLocked.default_code},
            status=403,
        )
    return render(request, "accounts/locked.html", {"minutes": minutes}, status=403)


@never_cache
@login_required
def mfa_verify(request: HttpRequest) -> HttpResponse:
    user = request.user
    if user.is_verified():  # type: ignore[union-attr]
        step = selectors.passkey_step(user, getattr(user, "otp_device", None))
        if step is None:
            return redirect(_next_url(request))
        if step == selectors.REGISTER_PASSKEY:
            return redirect("accounts:passkey_enrol")
    elif not selectors.has_confirmed_device(user):
        return redirect("accounts:mfa_enrol")
    passkey_required = selectors.passkey_required(user)
    has_passkey = selectors.has_passkey(user)
    form = TokenForm(request.POST or None)
    if request.method == "POST":
        if selectors.is_locked_out(request, user):
            return locked_out(request)
        if form.is_valid():
            try:
                services.otp_verify(user=user, token=form.cleaned_data["token"], request=request)
            except services.MFAError as error:
                if selectors.is_locked_out(request, user):
                    return locked_out(request)
                form.add_error("token", str(error))
            else:
                if selectors.passkey_step(user, user.otp_device) is not None:  # type: ignore[union-attr]
                    return redirect(_with_next("accounts:passkey_enrol", _next_url(request)))
                return redirect(_next_url(request))
    return render(
        request,
        "accounts/mfa_verify.html",
        {
            "form": form,
            "next": _next_url(request),
            "passkey_required": passkey_required,
            "has_passkey": has_passkey,
            "passkey_only": passkey_required and has_passkey,
        },
    )


def _base32_secret(device: Any) -> str:
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


@never_cache
@login_required
def mfa_enrol(request: HttpRequest) -> HttpResponse:
    """Add an authenticator app: the first factor of a new user, or an extra one."""
    user = request.user
    if selectors.has_confirmed_device(user) and not user.is_verified():  # type: ignore[union-attr]
        # Enrolling a new factor needs a session already verified by an existing one.
        return redirect("accounts:mfa_verify")
    device = services.totp_begin(user=user)
    form = TokenForm(request.POST or None)
    form.fields["token"].help_text = "The 6-digit code your authenticator app shows now."
    if request.method == "POST":
        if selectors.is_locked_out(request, user):
            return locked_out(request)
        if form.is_valid():
            try:
                codes = services.totp_confirm(
                    user=user, token=form.cleaned_data["token"], request=request
                )
            except services.MFAError as error:
                if selectors.is_locked_out(request, user):
                    return locked_out(request)
                form.add_error("token", str(error))
            else:
                next_url = _next_url(request)
                if selectors.passkey_step(user, user.otp_device) is not None:  # type: ignore[union-attr]
                    next_url = _with_next("accounts:passkey_enrol", next_url)
                if codes:
                    return render(
                        request, "accounts/backup_codes.html", {"codes": codes, "next": next_url}
                    )
                messages.success(request, "Authenticator app added.")
                return redirect(next_url)
    qr = segno.make(device.config_url, error="m")
    return render(
        request,
        "accounts/mfa_enrol.html",
        {
            "form": form,
            "qr_svg": qr.svg_inline(scale=5, dark="#111", light="#fff", title="TOTP QR code"),
            "secret": _base32_secret(device),
            "next": _next_url(request),
            "first_factor": not selectors.has_confirmed_device(user),
        },
    )


@never_cache
@login_required
def passkey_enrol(request: HttpRequest) -> HttpResponse:
    """Register a passkey: required of Admins when the organization says so."""
    user = request.user
    if not user.is_verified():  # type: ignore[union-attr]
        return redirect(_with_next("accounts:mfa_verify", request.get_full_path()))
    required = selectors.passkey_required(user)
    if required and selectors.has_passkey(user):
        return redirect(_next_url(request))
    return render(
        request,
        "accounts/passkey_enrol.html",
        {"next": _next_url(request), "passkey_required": required},
    )


@never_cache
@login_required
def security(request: HttpRequest) -> HttpResponse:
    user = request.user
    return render(
        request,
        "accounts/security.html",
        {
            "factors": selectors.factor_rows(user),
            "backup_codes_left": selectors.backup_codes_left(user),
            "passkey_required": selectors.passkey_required(user),
        },
    )


@never_cache
@login_required
@require_POST
def backup_codes_regenerate(request: HttpRequest) -> HttpResponse:
    codes = services.backup_codes_generate(user=request.user, request=request)
    return render(
        request,
        "accounts/backup_codes.html",
        {"codes": codes, "next": reverse("accounts:security")},
    )


@login_required
@require_POST
def device_remove(request: HttpRequest) -> HttpResponse:
    device = selectors.device_by_persistent_id(request.user, request.POST.get("device", ""))
    if device is None:
        messages.error(request, "That factor no longer exists.")
    else:
        try:
            services.device_remove(user=request.user, device=device, request=request)
        except services.MFAError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, "Factor removed.")
    return redirect("accounts:security")
