"""Audit receivers for authentication events (login, logout, failures, lockouts)."""

from __future__ import annotations

import time
from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from luxmail import audit, staff
from luxmail.accounts.middleware import SESSION_STARTED_KEY
from luxmail.accounts.sso import services as sso


@receiver(user_logged_in, dispatch_uid="luxmail.audit.login")
def _logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:

    # The absolute session limit (12 h) counts from here.
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_STARTED_KEY] = int(time.time())
    details = sso.login_details(user) or {"factor": "password"}
    audit.record("auth.login", actor=user, request=request, details=details)
    if request is not None and hasattr(request, "session"):
        sso.sign_in_completed(request=request, user=user)
        # So an Admin can list this user's sessions and end them (luxmail/staff.py).
        staff.staff_session_record(user=user, request=request)


@receiver(user_logged_out, dispatch_uid="luxmail.audit.logout")
def _logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None:
        audit.record("auth.logout", actor=user, request=request)


@receiver(user_login_failed, dispatch_uid="luxmail.audit.login_failed")
def _login_failed(
    sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any
) -> None:
    if "username" not in credentials:
        # A refused single sign-on (no username in its credentials): audited with its
        # reason by luxmail.accounts.sso.services.
        return
    # The username is not PHI; the password never reaches the audit log.
    stage = credentials.get("luxmail_stage", "password")
    audit.record(
        "auth.login_failed",
        actor=f"username:{str(credentials.get('username', ''))[:150]}",
        request=request,
        details={"stage": stage},
    )


@receiver(user_locked_out, dispatch_uid="luxmail.audit.locked_out")
def _locked_out(sender: Any, request: Any, username: str | None = None, **kwargs: Any) -> None:
    audit.record("auth.lockout", actor=f"username:{(username or '')[:150]}", request=request)
