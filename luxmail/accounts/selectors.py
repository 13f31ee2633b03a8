"""Read-side helpers for second factors and the passkey rule for Admins."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from django_otp import devices_for_user
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from luxmail import org, roles

# Factor names used in audit details and on the security page.
TOTP = "totp"
BACKUP_CODES = "backup_codes"
PASSKEY = "passkey"

# What an Admin under "require passkey for Admins" still has to do (see passkey_step).
REGISTER_PASSKEY = "register"
VERIFY_WITH_PASSKEY = "verify"


def factor_kind(device: Any) -> str:
    if isinstance(device, WebAuthnCredential):
        return PASSKEY
    if isinstance(device, StaticDevice):
        return BACKUP_CODES
    return TOTP


def has_confirmed_device(user: Any) -> bool:
    """True with a confirmed TOTP device or passkey (backup codes alone don't count)."""
    return any(not isinstance(d, StaticDevice) for d in devices_for_user(user, confirmed=True))


def factors(user: Any) -> list[Any]:
    return list(devices_for_user(user, confirmed=True))


@dataclass(frozen=True)
class FactorRow:
    """One line of the security page; ``persistent_id`` names the device for removal."""

    kind: str
    label: str
    name: str
    persistent_id: str
    created_at: datetime | None
    last_used_at: datetime | None
    removable: bool


_LABELS = {TOTP: "Authenticator app", BACKUP_CODES: "Backup codes", PASSKEY: "Passkey"}


def factor_rows(user: Any) -> list[FactorRow]:
    """The user's confirmed factors, passkeys and apps first, for display and removal."""
    devices = factors(user)
    must_keep_passkey = passkey_required(user)
    passkeys = sum(1 for d in devices if factor_kind(d) == PASSKEY)
    primary = sum(1 for d in devices if factor_kind(d) != BACKUP_CODES)
    rows = []
    for device in devices:
        kind = factor_kind(device)
        removable = kind == BACKUP_CODES or primary > 1
        if kind == PASSKEY and must_keep_passkey and passkeys < 2:
            removable = False
        name = device.name
        if kind == BACKUP_CODES:
            name = f"{device.token_set.count()} codes left"
        rows.append(
            FactorRow(
                kind=kind,
                label=_LABELS[kind],
                name=name,
                persistent_id=device.persistent_id,
                created_at=getattr(device, "created_at", None),
                last_used_at=getattr(device, "last_used_at", None),
                removable=removable,
            )
        )
    order = {PASSKEY: 0, TOTP: 1, BACKUP_CODES: 2}
    return sorted(rows, key=lambda row: order[row.kind])


def device_by_persistent_id(user: Any, persistent_id: str) -> Any | None:
    """The user's confirmed device with that id (never another user's), or None."""
    return next((d for d in factors(user) if d.persistent_id == persistent_id), None)


def pending_totp(user: Any) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=False).first()


def backup_codes_left(user: Any) -> int:
    device = StaticDevice.objects.filter(user=user, name="backup").first()
    return device.token_set.count() if device else 0


def passkey_required(user: Any) -> bool:
    """True when the org requires passkeys of ``user``'s role: Admins under "require
    passkey for Admins", Admins and PHI Marketers under "require passkey for PHI roles".

    Enforced at sign-in by ``MFARequiredMiddleware`` (a verified session of such a user
    must come from a passkey), so no PHI page is reached without one. Break-glass
    access (``luxmail/breakglass.py``) does not make a user's role a PHI role.
    """
    current = org.get_settings()
    required_roles = set()
    if current.require_passkey_for_admins:
        required_roles.add(roles.ADMIN)
    if current.require_passkey_for_phi_roles:
        required_roles.update(roles.PHI_ROLES)
    return bool(required_roles and user.groups.filter(name__in=required_roles).exists())


def has_passkey(user: Any) -> bool:
    return WebAuthnCredential.objects.filter(user=user, confirmed=True).exists()


def passkey_step(user: Any, session_device: Any) -> str | None:
    """What a verified session must still do under "require passkey for Admins".

    ``REGISTER_PASSKEY`` for an Admin without a passkey, ``VERIFY_WITH_PASSKEY`` for an
    Admin whose session was verified by another factor (e.g. before the rule was
    switched on), ``None`` when nothing is missing.
    """
    if not passkey_required(user):
        return None
    if not has_passkey(user):
        return REGISTER_PASSKEY
    if not isinstance(session_device, WebAuthnCredential):
        return VERIFY_WITH_PASSKEY
    return None


def is_locked_out(request: Any, user: Any) -> bool:
    """True while django-axes holds a lockout for ``user`` (password or second factor)."""

    return bool(AxesProxyHandler.is_locked(request, credentials={"username": user.get_username()}))
