"""django-otp's OTPMiddleware, extended: a session whose sign-in the IdP verified with a
second factor (docs/security.md "Single sign-on") counts as verified.

``user.otp_device`` stays None for such a session (no LuxMail device verified it);
``user.is_verified()`` is True. Under "require passkey for Admins" the middleware in
luxmail.accounts.middleware still asks an Admin for a LuxMail passkey.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django_otp.middleware import OTPMiddleware as BaseOTPMiddleware

from luxmail.accounts.sso.services import SSO_MFA_SESSION_KEY


def _verified(user: Any) -> bool:
    return True


class OTPMiddleware(BaseOTPMiddleware):
    def _verify_user_sync(self, request: HttpRequest, user: Any) -> Any:
        user = super()._verify_user_sync(request, user)
        if (
            user.is_authenticated
            and user.otp_device is None
            and request.session.get(SSO_MFA_SESSION_KEY) == user.pk
        ):
            user.is_verified = _verified.__get__(user)
        return user
