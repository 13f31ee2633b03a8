"""A mistyped authenticator code (issue 12, item 9).

django-otp pauses a device from the first wrong code, so the correct code typed right
after a typo was refused with the same "not valid" message. Now a typo or two cost
nothing; after that the user is told exactly how long to wait. Real TOTP codes
(``django_otp.oath.totp``) go through the real sign-in views.
"""

import re
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from luxmail.accounts import services

pytestmark = pytest.mark.django_db

WAIT = re.compile(r"Too many attempts — try again in (\d+) seconds?\.")


def _code(device: TOTPDevice) -> str:
    key, step, t0, digits = device.bin_key, device.step, device.t0, device.digits
    return f"{totp(key, step=step, t0=t0, digits=digits, drift=device.drift):06d}"


def _wrong(device: TOTPDevice) -> str:
    """A code that is wrong now (not the current one, nor within the tolerance)."""
    near = {
        totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=d)
        for d in range(-device.tolerance - 1, device.tolerance + 2)
    }
    return next(f"{n:06d}" for n in range(1000) if n not in near)


def _signed_in_with_password(client, user):
    response = client.post(
        reverse("accounts:login"), {"username": user.username, "password": user.test_password}
    )
    assert response.status_code == 302
    return TOTPDevice.objects.get(user=user, confirmed=True)


def _verify(client, token):
    return client.post(reverse("accounts:mfa_verify"), {"token": token})


def _is_verified(client) -> bool:
    return client.get(reverse("dashboard")).status_code == 200


def test_the_correct_code_right_after_a_typo_signs_in(client, make_user):
    user = make_user("Admin")
    device = _signed_in_with_password(client, user)
    wrong = _verify(client, _wrong(device))
    assert wrong.status_code == 200 and "That code is not valid." in wrong.content.decode()
    right = _verify(client, _code(device))
    assert right.status_code == 302
    assert _is_verified(client)


def test_two_typos_are_still_free(client, make_user):
    user = make_user("Admin")
    device = _signed_in_with_password(client, user)
    for _ in range(services.CODE_FREE_FAILURES):
        assert "That code is not valid." in _verify(client, _wrong(device)).content.decode()
    assert _verify(client, _code(device)).status_code == 302


def test_many_wrong_codes_say_how_many_seconds_to_wait(client, make_user):
    user = make_user("Admin")
    device = _signed_in_with_password(client, user)
    for _ in range(services.CODE_FREE_FAILURES):
        _verify(client, _wrong(device))
    body = _verify(client, _wrong(device)).content.decode()
    match = WAIT.search(body)
    assert match, body
    seconds = int(match.group(1))
    assert 0 < seconds <= services.CODE_BACKOFF_SECONDS
    # During the pause even the correct code is refused, and the page says why.
    refused = _verify(client, _code(device))
    assert refused.status_code == 200 and WAIT.search(refused.content.decode())
    assert not _is_verified(client)
    with time_machine.travel(timezone.now() + timedelta(seconds=seconds + 1), tick=False):
        device.refresh_from_db()
        assert _verify(client, _code(device)).status_code == 302
        assert _is_verified(client)


def test_a_typo_while_adding_an_authenticator_is_forgiven_too(client, make_user):
    user = make_user("Marketer", totp=False)
    client.post(
        reverse("accounts:login"), {"username": user.username, "password": user.test_password}
    )
    client.get(reverse("accounts:mfa_enrol"))
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    wrong = client.post(reverse("accounts:mfa_enrol"), {"token": _wrong(device)})
    assert "not valid" in wrong.content.decode()
    right = client.post(reverse("accounts:mfa_enrol"), {"token": _code(device)})
    assert right.status_code == 200 and "backup" in right.content.decode().lower()
    device.refresh_from_db()
    assert device.confirmed
