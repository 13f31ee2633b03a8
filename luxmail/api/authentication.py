"""DRF authentication: ``Authorization: Bearer <API key>`` or a verified staff session."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from luxmail.accounts import selectors
from luxmail.api import services


class ApiKeyPrincipal:
    """``request.user`` for a request authenticated by an API key (no Django user)."""

    is_authenticated = True
    is_active = True
    is_anonymous = False
    is_staff = False
    pk = None

    def __init__(self, key: Any):
        self.key = key

    def __str__(self) -> str:
        return f"api-key:{self.key.prefix}"

    def get_username(self) -> str:
        return str(self)

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return False


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header.")
        try:
            raw = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Malformed API key.") from None
        key = services.api_key_authenticate(raw=raw, request=request._request)
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked API key.")
        return ApiKeyPrincipal(key), key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class VerifiedSessionAuthentication(authentication.SessionAuthentication):
    """Session authentication that accepts only sessions verified by a second factor."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        result = super().authenticate(request)
        if result is None:
            return None
        user = result[0]
        if not getattr(user, "is_verified", lambda: False)():
            raise exceptions.NotAuthenticated("Complete the second sign-in factor first.")

        # Same rule as the UI (MFARequiredMiddleware): under "require passkey for
        # Admins" an Admin's session counts only once verified by a passkey.
        if selectors.passkey_step(user, getattr(user, "otp_device", None)) is not None:
            raise exceptions.NotAuthenticated("Sign in with your passkey first.")
        return result


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema describes ``ApiKeyAuthentication``."""

    target_class = "luxmail.api.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key from Settings → API keys: `Authorization: Bearer lmk_…`.",
        }


class VerifiedSessionScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema describes ``VerifiedSessionAuthentication``."""

    target_class = "luxmail.api.authentication.VerifiedSessionAuthentication"
    name = "verifiedSession"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": settings.SESSION_COOKIE_NAME,
            "description": "A browser session verified by a second factor (plus CSRF token).",
        }
