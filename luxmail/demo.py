"""The ``make run`` demo data registry (``manage.py demo_setup``).

Each app may provide ``<app>/demo.py`` that registers an idempotent
``populate(*, actor)`` here. ``demo_setup`` loads those modules with Django's
``autodiscover_modules("demo")`` (as the admin loads ``admin.py``) and runs them in
``INSTALLED_APPS`` order: luxmail never names the apps above it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.contrib.auth.models import Group
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from luxmail import breakglass, conf, roles, staff
from luxmail.actors import Actor
from luxmail.api import services as api_services
from luxmail.models import ApiKey, OrgSettings, User

Populate = Callable[..., Any]

_populators: list[Populate] = []


def register(populate: Populate) -> Populate:
    """Register an app's demo ``populate(*, actor)``; usable as a decorator."""
    if populate not in _populators:
        _populators.append(populate)
    return populate


@contextmanager
def quiet_hours_paused() -> Iterator[None]:
    """No quiet hours while the demo data is loaded (its sample campaigns are delivered
    at load time, at any hour); the organization's quiet hours come back afterwards."""
    row = OrgSettings.objects.get_or_create(pk=1)[0]
    hours = {"quiet_hours_start": row.quiet_hours_start, "quiet_hours_end": row.quiet_hours_end}
    OrgSettings.objects.filter(pk=1).update(quiet_hours_start=0, quiet_hours_end=0)
    try:
        yield
    finally:
        OrgSettings.objects.filter(pk=1).update(**hours)


def populators() -> list[Populate]:
    return list(_populators)


class EmlWriter:
    """An aiosmtpd handler that writes each message it accepts to ``directory`` as .eml
    (the dev sink of ``make run``'s demo sends)."""

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}.eml"
        (self.directory / name).write_bytes(envelope.original_content or envelope.content)
        self.count += 1
        return "250 Message accepted for delivery"


@register
def populate_staff(*, actor: Actor) -> None:
    """Staff for the Staff page and the compliance dashboard (issue 17 §6, §8): a
    Marketer, a Viewer without a second factor who has not signed in for months, a
    Marketer with open break-glass access, a pending invitation and an unused API key.
    Idempotent; the demo users have no usable password."""
    now = timezone.now()
    people = [
        ("sam.marketer", roles.MARKETER, True, None),
        ("pat.viewer", roles.VIEWER, False, now - timedelta(days=140)),
        ("riley.oncall", roles.MARKETER, True, now - timedelta(days=1)),
    ]
    users = {}
    for username, role, totp, last_login in people:
        user, created = User.objects.get_or_create(
            username=username, defaults={"email": f"{username}@demo.luxmail.invalid"}
        )
        if created:
            user.set_unusable_password()
            user.last_login = last_login
            if last_login is not None:
                user.date_joined = last_login - timedelta(days=30)
            user.save()
            user.groups.add(Group.objects.get(name=role))
            if totp:
                TOTPDevice.objects.create(user=user, name="Demo authenticator", confirmed=True)
        users[username] = user
    if not staff.invitations_open().exists():
        staff.invitation_create(
            email="new.hire@demo.luxmail.invalid",
            role_names=[roles.PHI_MARKETER],
            actor=actor,
            send=False,
        )
    if breakglass.active_grant_id(users["riley.oncall"].pk) is None:
        breakglass.break_glass_request(
            user=users["riley.oncall"],
            justification="Weekend recall of a medication lot: on-call staff must reach "
            "affected patients before Monday (ticket OPS-2211).",
            minutes=conf.break_glass_max_minutes(),
        )
    if not ApiKey.objects.filter(name="Legacy EHR sync").exists():
        issued = api_services.api_key_create(
            name="Legacy EHR sync", scopes=["contacts:read"], expires_at=None, actor=actor
        )
        ApiKey.objects.filter(pk=issued.key.pk).update(created_at=now - timedelta(days=200))
