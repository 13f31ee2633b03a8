"""Second-factor enrolment, verification, removal and unlocking. Every change is audited.

Audit actions written here: ``mfa.enrol`` / ``mfa.remove`` (details: ``factor``),
``mfa.backup_codes``, ``auth.mfa_verified`` (details: ``factor``), ``auth.unlock``.
Failed second factors go through Django's ``user_login_failed`` signal, which feeds
django-axes (lockout) and ``luxmail.signals`` (``auth.login_failed`` with the stage).
"""

from __future__ import annotations

import math
import secrets
from datetime import datetime, timedelta
from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from django.contrib.auth.signals import user_login_failed
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django_otp import login as otp_login
from django_otp import match_token
from django_otp.models import ThrottlingMixin
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from luxmail import audit
from luxmail.accounts import selectors
from luxmail.actors import Actor

BACKUP_CODE_COUNT = 10


class MFAError(Exception):
    """A second-factor step failed; the message is safe to show to the user."""


# Back-off for codes (authenticator and backup codes). django-otp's own back-off pauses
# a device from the very first wrong code (1 s, 2 s, 4 s …), so the correct code typed
# right after a typo was refused; it is turned off (OTP_TOTP_THROTTLE_FACTOR and
# OTP_STATIC_THROTTLE_FACTOR = 0 in settings) and this one reads the same counters
# django-otp keeps on each device (throttling_failure_count / _timestamp): the first
# CODE_FREE_FAILURES wrong codes in a row cost nothing, each further one pauses the
# device for CODE_BACKOFF_SECONDS, doubled every time. A code sent during the pause is
# not checked and still counts towards the account lockout (django-axes), which must
# not depend on how fast someone guesses; the user is told how long to wait.
CODE_FREE_FAILURES = 2
CODE_BACKOFF_SECONDS = 30
CODE_BACKOFF_MAX_SECONDS = 3600


def code_locked_until(device: Any) -> datetime | None:
    """When ``device`` accepts codes again, or None when it accepts them now."""
    failures = getattr(device, "throttling_failure_count", 0)
    last = getattr(device, "throttling_failure_timestamp", None)
    if failures <= CODE_FREE_FAILURES or last is None:
        return None
    pause = min(
        CODE_BACKOFF_SECONDS * 2 ** (failures - CODE_FREE_FAILURES - 1), CODE_BACKOFF_MAX_SECONDS
    )
    until = last + timedelta(seconds=pause)
    return until if until > timezone.now() else None


def _wait_message(until: datetime) -> str:
    seconds = max(1, math.ceil((until - timezone.now()).total_seconds()))
    return f"Too many attempts — try again in {seconds} second{'' if seconds == 1 else 's'}."


def _code_devices(user: Any) -> list[Any]:
    """The user's devices that take typed codes (TOTP apps and backup codes)."""
    return [d for d in selectors.factors(user) if isinstance(d, ThrottlingMixin)]


def _codes_locked_until(devices: list[Any]) -> datetime | None:
    """None when some device accepts a code now, else the earliest time one will."""
    waits = [code_locked_until(d) for d in devices]
    if not waits or any(w is None for w in waits):
        return None
    return min(w for w in waits if w is not None)


def totp_begin(*, user: Any) -> TOTPDevice:
    """The user's unconfirmed TOTP device, created when missing (idempotent)."""
    device = selectors.pending_totp(user)
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    return device


def backup_codes_generate(*, user: Any, request: HttpRequest | None = None) -> list[str]:
    """Replace the user's backup codes with 10 new single-use codes and return them.

    The old codes stop working. Audited as ``mfa.backup_codes`` (the count only).
    """
    with transaction.atomic():
        device, _ = StaticDevice.objects.get_or_create(user=user, name="backup")
        device.confirmed = True
        device.save()
        device.token_set.all().delete()
        codes = [f"{secrets.randbelow(10**8):08d}" for _ in range(BACKUP_CODE_COUNT)]
        StaticToken.objects.bulk_create(StaticToken(device=device, token=c) for c in codes)
        audit.record(
            "mfa.backup_codes", actor=user, request=request, details={"count": BACKUP_CODE_COUNT}
        )
    return codes


def _sign_in_complete(*, user: Any, device: Any, request: HttpRequest, audit_verify: bool) -> None:
    # The session is now verified by ``device``. Only a complete sign-in forgives
    # earlier failures (AXES_RESET_ON_SUCCESS is off, see settings).
    otp_login(request, device)
    AxesProxyHandler.reset_attempts(username=user.get_username())
    if audit_verify:
        audit.record(
            "auth.mfa_verified",
            actor=user,
            request=request,
            details={"factor": selectors.factor_kind(device)},
        )


def totp_confirm(*, user: Any, token: str, request: HttpRequest) -> list[str]:
    """Confirm the pending TOTP device with ``token`` and verify the session with it.

    Returns new backup codes when the user has none left (first enrolment), otherwise
    an empty list (an extra authenticator keeps the existing codes). Audited as
    ``mfa.enrol`` (factor ``totp``). Raises ``MFAError`` when the code is wrong; the
    failure counts towards the lockout.
    """
    device = selectors.pending_totp(user)
    if device is None:
        raise MFAError("Start the authenticator set-up again.")
    locked_until = code_locked_until(device)
    if locked_until or not device.verify_token(token.strip().replace(" ", "")):
        second_factor_failed(user=user, request=request, stage="totp_enrol")
        locked_until = locked_until or code_locked_until(device)
        raise MFAError(
            _wait_message(locked_until)
            if locked_until
            else "That code is not valid. Check the time on your phone and try again."
        )
    with transaction.atomic():
        device.confirmed = True
        device.save()
        _sign_in_complete(user=user, device=device, request=request, audit_verify=False)
        audit.record("mfa.enrol", actor=user, request=request, details={"factor": "totp"})
        codes: list[str] = []
        if selectors.backup_codes_left(user) == 0:
            codes = backup_codes_generate(user=user, request=request)
    return codes


def second_factor_failed(*, user: Any, request: HttpRequest, stage: str) -> None:
    """Count a failed second factor towards the lockout and audit it (no code is kept)."""
    user_login_failed.send(
        sender=__name__,
        credentials={"username": user.get_username(), "luxmail_stage": stage},
        request=request,
    )


def otp_verify(*, user: Any, token: str, request: HttpRequest) -> None:
    """Verify the session with a TOTP or backup code; audited as ``auth.mfa_verified``.

    Raises ``MFAError`` for a wrong code (counted towards the lockout) and when the
    organization requires this Admin to use their passkey instead.
    """
    token = token.strip().replace(" ", "")
    if selectors.passkey_required(user) and selectors.has_passkey(user):
        raise MFAError(
            "Your organization requires Admins to sign in with a passkey; codes are not "
            "accepted. Use your passkey, or ask another Admin to remove a lost one."
        )
    devices = _code_devices(user)
    locked_until = _codes_locked_until(devices)
    device = None if locked_until or not token.isdigit() else match_token(user, token)
    if device is None:
        second_factor_failed(user=user, request=request, stage="otp")
        # The wrong code that starts a pause already says how long it is.
        locked_until = locked_until or _codes_locked_until(_code_devices(user))
        raise MFAError(_wait_message(locked_until) if locked_until else "That code is not valid.")
    # match_token() counted the failures on every device it tried; a success clears all
    # of them so an old count on the backup codes does not pause the next typo.
    for other in devices:
        if other.persistent_id != device.persistent_id and other.throttling_failure_count:
            other.throttle_reset()
    _sign_in_complete(user=user, device=device, request=request, audit_verify=True)


def passkey_registered(*, user: Any, credential: WebAuthnCredential, request: HttpRequest) -> None:
    """Name a newly registered passkey and audit it as ``mfa.enrol`` (factor ``passkey``).

    Under "require passkey for Admins" the session is re-verified with the new passkey,
    so the Admin can continue without signing in again.
    """
    count = WebAuthnCredential.objects.filter(user=user).count()
    credential.name = f"Passkey {count} ({timezone.localdate():%Y-%m-%d})"
    credential.save(update_fields=["name"])
    audit.record(
        "mfa.enrol",
        actor=user,
        request=request,
        details={"factor": selectors.PASSKEY, "credential": credential.pk},
    )
    if selectors.passkey_required(user):
        otp_login(request, credential)


def passkey_verified(*, user: Any, credential: WebAuthnCredential, request: HttpRequest) -> None:
    """Mark the session verified by ``credential``; audited as ``auth.mfa_verified``."""
    _sign_in_complete(user=user, device=credential, request=request, audit_verify=True)


def device_remove(*, user: Any, device: Any, request: HttpRequest) -> None:
    """Remove one of the user's factors; audited as ``mfa.remove``.

    Raises ``MFAError`` for the last authenticator app or passkey (the account would be
    left with backup codes only) and for an Admin's last passkey when the organization
    requires one.
    """
    kind = selectors.factor_kind(device)
    others = [
        d
        for d in selectors.factors(user)
        if d.persistent_id != device.persistent_id
        and selectors.factor_kind(d) != selectors.BACKUP_CODES
    ]
    if kind != selectors.BACKUP_CODES and not others:
        raise MFAError("Add another authenticator app or passkey before removing your last one.")
    if (
        kind == selectors.PASSKEY
        and selectors.passkey_required(user)
        and not any(selectors.factor_kind(d) == selectors.PASSKEY for d in others)
    ):
        raise MFAError(
            "Your organization requires Admins to have a passkey: register another one "
            "before removing this one."
        )
    with transaction.atomic():
        device.delete()
        audit.record("mfa.remove", actor=user, request=request, details={"factor": kind})


def device_remove_by_admin(*, device: Any, actor: Actor, request: HttpRequest | None) -> None:
    """An Admin removes another staff member's factor (a lost phone or passkey).

    The owner enrols again at their next sign-in. Audited as ``mfa.remove`` with the
    owner as target and ``by_admin``.
    """
    kind = selectors.factor_kind(device)
    owner = device.user
    with transaction.atomic():
        device.delete()
        audit.record(
            "mfa.remove",
            actor=actor,
            request=request,
            target=owner,
            details={"factor": kind, "by_admin": True},
        )


def lockout_clear(*, username: str, actor: Actor, request: HttpRequest | None = None) -> int:
    """Clear the sign-in lockout of ``username`` (password and second-factor failures).

    Returns the number of lockout records removed; audited as ``auth.unlock`` (the
    username is a staff login name, not PHI).
    """
    with transaction.atomic():
        removed = AxesProxyHandler.reset_attempts(username=username)
        audit.record(
            "auth.unlock",
            actor=actor,
            request=request,
            details={"username": username[:150], "records": removed},
        )
    return int(removed)


def account_unlock(*, user: Any, actor: Actor, request: HttpRequest | None = None) -> int:
    """Clear the lockout of ``user``; see ``lockout_clear``."""
    return lockout_clear(username=user.get_username(), actor=actor, request=request)
