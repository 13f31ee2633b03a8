"""Second-factor enrolment, verification, removal and unlocking. Every change is audited.

Audit actions written here: ``mfa.enrol`` / ``mfa.remove`` (details: ``factor``),
``mfa.backup_codes``, ``auth.mfa_verified`` (details: ``factor``), ``auth.unlock``.
Failed second factors go through Django's ``user_login_failed`` signal, which feeds
django-axes (lockout) and ``luxmail.signals`` (``auth.login_failed`` with the stage).
"""

from __future__ import annotations

import secrets
from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from django.contrib.auth.signals import user_login_failed
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django_otp import login as otp_login
from django_otp import match_token
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from luxmail import audit
from luxmail.accounts import selectors

BACKUP_CODE_COUNT = 10


class MFAError(Exception):
    """A second-factor step failed; the message is safe to show to the user."""


# django-otp slows down guessing per device (1 s, 2 s, 4 s … after each wrong code) and
# does not check a code sent during that pause. It still counts as a failed attempt
# (the lockout must not depend on how fast someone guesses), but the user is told why.
THROTTLED = "Too many wrong codes in a row: wait a few seconds, then enter the current code."


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
    throttled = not device.verify_is_allowed()[0]
    if throttled or not device.verify_token(token.strip().replace(" ", "")):
        second_factor_failed(user=user, request=request, stage="totp_enrol")
        raise MFAError(
            THROTTLED
            if throttled
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
    totp = [d for d in selectors.factors(user) if selectors.factor_kind(d) == selectors.TOTP]
    throttled = len(token) == 6 and bool(totp) and not any(d.verify_is_allowed()[0] for d in totp)
    device = match_token(user, token) if token.isdigit() else None
    if device is None:
        second_factor_failed(user=user, request=request, stage="otp")
        raise MFAError(THROTTLED if throttled else "That code is not valid.")
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


def device_remove_by_admin(*, device: Any, actor: Any, request: HttpRequest | None) -> None:
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


def lockout_clear(*, username: str, actor: Any, request: HttpRequest | None = None) -> int:
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


def account_unlock(*, user: Any, actor: Any, request: HttpRequest | None = None) -> int:
    """Clear the lockout of ``user``; see ``lockout_clear``."""
    return lockout_clear(username=user.get_username(), actor=actor, request=request)
