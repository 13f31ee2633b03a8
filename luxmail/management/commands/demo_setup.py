"""Prepare the ``make run`` demo: an Admin with TOTP, then each app's demo data.

Idempotent: the Admin's password and TOTP secret are generated once and kept in
``var/demo-admin.json`` (the secret as hex for the device, and as base32 plus an
``otpauth://`` URI for authenticator apps) so every ``make run`` prints the same
sign-in details. Each
app may provide ``<app>/demo.py`` that registers ``populate(*, actor)`` with
``luxmail.demo``; it must be idempotent.
"""

from __future__ import annotations

import base64
import io
import json
import secrets
from typing import Any

import segno
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.module_loading import autodiscover_modules
from django_otp.plugins.otp_totp.models import TOTPDevice

from luxmail import demo, org, roles
from luxmail.accounts.services import account_unlock


class Command(BaseCommand):
    help = "Create the demo Admin (with TOTP) and demo data for `make run`."

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.MODE != "dev":
            raise CommandError("demo_setup only runs with LUXMAIL_ENV=dev (make run).")
        creds = self._credentials()
        with transaction.atomic():
            admin = self._admin(creds)
            org.get_settings()
        if AccessAttempt.objects.filter(username=admin.get_username()).exists():
            # Locked out by earlier failed attempts: a restart should let you in again.
            account_unlock(user=admin, actor=None)
            self.stdout.write("The demo Admin's sign-in lockout was cleared.")
        autodiscover_modules("demo")  # each app's demo.py registers with luxmail.demo
        # The sample campaigns are delivered now, at whatever hour `make run` starts:
        # quiet hours are paused for the load only, then hold everything sent later.
        with demo.quiet_hours_paused():
            for populate in demo.populators():
                populate(actor=admin)
        self._print(creds)

    def _credentials(self) -> dict[str, str]:
        path = settings.VAR_DIR / "demo-admin.json"
        if path.exists():
            return dict(json.loads(path.read_text()))
        creds = {
            "username": "admin",
            "password": secrets.token_urlsafe(12),
            "totp_key": secrets.token_hex(20),
        }
        self._save(creds)
        return creds

    @staticmethod
    def _save(creds: dict[str, str]) -> None:
        path = settings.VAR_DIR / "demo-admin.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(creds, indent=2))
        path.chmod(0o600)

    def _admin(self, creds: dict[str, str]) -> Any:
        user_model = get_user_model()
        admin, created = user_model.objects.get_or_create(
            username=creds["username"],
            defaults={
                "email": "admin@demo.luxmail.invalid",
                "is_staff": True,
                "is_superuser": True,
                "first_name": "Demo",
                "last_name": "Admin",
            },
        )
        if created or not admin.check_password(creds["password"]):
            admin.set_password(creds["password"])
            admin.save()
        roles.sync_roles()
        admin.groups.add(Group.objects.get(name=roles.ADMIN))
        TOTPDevice.objects.update_or_create(
            user=admin,
            name="Demo authenticator",
            defaults={"key": creds["totp_key"], "confirmed": True},
        )
        return admin

    def _print(self, creds: dict[str, str]) -> None:
        device = TOTPDevice.objects.get(user__username=creds["username"], name="Demo authenticator")
        secret = base64.b32encode(bytes.fromhex(creds["totp_key"])).decode().rstrip("=")
        # "totp_key" is the hex form the device stores; authenticator apps take base32
        # or the URI, so the file keeps those too (for whoever opens it later).
        readable = {"totp_secret": secret, "otpauth_uri": device.config_url}
        if any(creds.get(k) != v for k, v in readable.items()):
            self._save({**creds, **readable})
        out = self.stdout
        out.write("")
        out.write("=" * 72)
        out.write(" LuxMail demo is starting at " + settings.LUXMAIL_BASE_URL)
        out.write("=" * 72)
        out.write(f" Username:     {creds['username']}")
        out.write(f" Password:     {creds['password']}")
        out.write(f" TOTP secret:  {secret}")
        out.write(f" otpauth URI:  {device.config_url}")
        out.write(" Scan with an authenticator app:")
        out.write("")
        qr = io.StringIO()
        segno.make(device.config_url, error="l").terminal(out=qr, compact=True)
        out.write(qr.getvalue(), ending="")
        out.write("")
        out.write(
            f" Outbox (what the local SMTP sink got): {settings.LUXMAIL_BASE_URL}/dev/outbox/"
        )
        out.write("=" * 72)
