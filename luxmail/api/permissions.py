"""Scope-based permissions for API views.

A view declares ``required_scopes``: a scope string, or a mapping of HTTP method to
scope (``"*"`` as a fallback). API keys must carry the scope; verified staff sessions
hold the scopes their role's permissions grant (``luxmail.api.scopes``).
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from luxmail.api.scopes import scopes_for_user
from luxmail.models import ApiKey


def request_scopes(request: Request) -> set[str]:
    if isinstance(request.auth, ApiKey):
        return set(request.auth.scopes)
    return scopes_for_user(request.user)


def has_scope(request: Request, scope: str) -> bool:
    return scope in request_scopes(request)


def required_scope(view: Any, method: str) -> str | None:
    required = getattr(view, "required_scopes", None)
    if required is None or isinstance(required, str):
        return required
    return required.get(method, required.get("*"))


class HasScope(BasePermission):
    message = "This credential lacks the scope this endpoint needs."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if user is None or not user.is_authenticated:
            return False
        scope = required_scope(view, request.method or "GET")
        if scope is None:
            return True
        if scope not in request_scopes(request):
            self.message = f"This credential lacks the '{scope}' scope."
            return False
        return True


class IsVerifiedStaff(BasePermission):
    """For the OpenAPI schema and docs pages: any verified staff session or API key."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated)
