"""``manage.py demo_setup`` (make run): a usable Admin with TOTP, stable across runs."""

import base64
import io
import json
import re

import pyotp
import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django_otp.plugins.otp_totp.models import TOTPDevice

pytestmark = pytest.mark.django_db


@pytest.fixture
def dev(settings, tmp_path):
    settings.MODE = "dev"
    settings.VAR_DIR = tmp_path
    return tmp_path


def _run() -> str:
    out = io.StringIO()
    call_command("demo_setup", stdout=out)
    return out.getvalue()


def test_refused_outside_the_dev_mode():
    with pytest.raises(CommandError, match="LUXMAIL_ENV=dev"):
        call_command("demo_setup")


def test_prints_working_credentials_and_keeps_them(dev):
    first = _run()
    creds = json.loads((dev / "demo-admin.json").read_text())
    assert (dev / "demo-admin.json").stat().st_mode & 0o077 == 0
    admin = get_user_model().objects.get(username=creds["username"])
    assert admin.is_superuser and admin.check_password(creds["password"])
    assert admin.groups.filter(name="Admin").exists()
    device = TOTPDevice.objects.get(user=admin, confirmed=True)
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    assert f"TOTP secret:  {secret}" in first
    assert f"Password:     {creds['password']}" in first
    assert device.verify_token(pyotp.TOTP(secret).now())
    assert "\n\n\n" not in first.split("Scan with")[1].split("Outbox")[0]  # compact QR

    admin.set_password("changed by someone in the UI")
    admin.save()
    second = _run()
    assert f"Password:     {creds['password']}" in second
    admin.refresh_from_db()
    assert admin.check_password(creds["password"])
    assert get_user_model().objects.filter(username=creds["username"]).count() == 1


def test_a_locked_out_demo_admin_is_unlocked_by_a_restart(dev):
    _run()
    username = json.loads((dev / "demo-admin.json").read_text())["username"]
    AccessAttempt.objects.create(
        username=username, ip_address="127.0.0.1", user_agent="x", failures_since_start=9
    )
    assert "lockout was cleared" in _run()
    assert not AccessAttempt.objects.filter(username=username).exists()


def test_printed_secret_and_uri_are_what_authenticator_apps_take(dev):
    from urllib.parse import parse_qs, unquote, urlsplit

    out = _run()
    creds = json.loads((dev / "demo-admin.json").read_text())
    device = TOTPDevice.objects.get(user__username=creds["username"], confirmed=True)
    secret = out.split("TOTP secret:")[1].split()[0]
    assert re.fullmatch(r"[A-Z2-7]+", secret)  # base32, not hex
    assert base64.b32decode(secret + "=" * (-len(secret) % 8)) == device.bin_key
    uri = out.split("otpauth URI:")[1].split()[0]
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert unquote(parts.path) == f"/LuxMail:{creds['username']}"
    query = {k: v[0] for k, v in parse_qs(parts.query, strict_parsing=True).items()}
    assert query["secret"] == secret and query["issuer"] == "LuxMail"
    assert query.get("digits", "6") == "6" and query.get("period", "30") == "30"
    assert query.get("algorithm", "SHA1") == "SHA1"
    # The file that keeps the details across restarts holds them in the same form.
    assert creds["totp_secret"] == secret and creds["otpauth_uri"] == uri
