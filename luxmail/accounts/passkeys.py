"""Passkeys (WebAuthn) through django-otp-webauthn, with LuxMail's rules on top.

The library's JSON endpoints are mounted at ``/webauthn/`` (``webauthn_urls.py``) through
these subclasses, which add what a healthcare deployment needs:

* passkeys are a **second factor only** (``OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN`` is
  off): the ceremony needs a password-authenticated session;
* a passkey is **registered only from a verified session** (the library would let a
  user without any factor register one and skip the authenticator app + backup codes);
* registration and verification are **audited** (``mfa.enrol`` / ``auth.mfa_verified``
  with factor ``passkey``), and a failed assertion counts towards the **lockout**, which
  is also checked before every ceremony.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import logout
from django.db import transaction
from django.http import JsonResponse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django_otp_webauthn import exceptions
from django_otp_webauthn import views as webauthn_views
from django_otp_webauthn.utils import rewrite_exceptions

from luxmail.accounts import selectors, services


class AccountLocked(exceptions.OTPWebAuthnApiError):
    status_code = 403
    default_code = "account_locked"
    default_detail = (
        "Too many failed sign-in attempts: this account is temporarily locked. "
        "Try again later, or ask an Admin to unlock it."
    )


class VerifyFirst(exceptions.OTPWebAuthnApiError):
    status_code = 403
    default_code = "user_not_verified"
    default_detail = "Confirm it's you with your authenticator app before adding a passkey."


# Server-side verification failures that count as a failed second factor.
_FAILED_ASSERTION = (
    exceptions.UnprocessableEntity,
    exceptions.CredentialNotFound,
    exceptions.CredentialUserMismatch,
    exceptions.CredentialDisabled,
)


def _refuse_if_locked(request: Any) -> None:
    user = request.user
    if user.is_authenticated and selectors.is_locked_out(request, user):
        logout(request)
        raise AccountLocked()


class _VerifiedRegistrationMixin:
    request: Any
    # Shown by the library's own check (users with a factor but an unverified session).
    messages = {"user_not_verified": VerifyFirst.default_detail}

    def check_can_register(self) -> None:
        _refuse_if_locked(self.request)
        if not self.request.user.is_verified():
            raise VerifyFirst()


@method_decorator(never_cache, name="dispatch")
class BeginRegistration(_VerifiedRegistrationMixin, webauthn_views.BeginCredentialRegistrationView):
    pass


@method_decorator(never_cache, name="dispatch")
class CompleteRegistration(
    _VerifiedRegistrationMixin, webauthn_views.CompleteCredentialRegistrationView
):
    def post(self, *args: Any, **kwargs: Any) -> JsonResponse:
        user = self.get_user()
        state = self.get_state()  # popped from the session first: never reusable
        helper = self.get_helper()
        logger = webauthn_views._get_pywebauthn_logger()
        with rewrite_exceptions(logger=logger), transaction.atomic():
            credential = helper.register_complete(user=user, state=state, data=self.request.data)
            services.passkey_registered(user=user, credential=credential, request=self.request)
        return JsonResponse({"id": credential.pk})


@method_decorator(never_cache, name="dispatch")
class BeginAuthentication(webauthn_views.BeginCredentialAuthenticationView):
    def check_can_authenticate(self) -> None:
        _refuse_if_locked(self.request)
        super().check_can_authenticate()


@method_decorator(never_cache, name="dispatch")
class CompleteAuthentication(webauthn_views.CompleteCredentialAuthenticationView):
    def check_can_authenticate(self) -> None:
        _refuse_if_locked(self.request)
        super().check_can_authenticate()

    def complete_auth(self, device: Any) -> None:
        services.passkey_verified(user=self.request.user, credential=device, request=self.request)

    def post(self, *args: Any, **kwargs: Any) -> JsonResponse:
        try:
            return super().post(*args, **kwargs)
        except _FAILED_ASSERTION:
            user = self.request.user
            services.second_factor_failed(user=user, request=self.request, stage="passkey")
            _refuse_if_locked(self.request)
            raise
