"""OpenID Connect sign-in against a real provider process (oidc-provider-mock: Flask and
Authlib, RS256-signed ID tokens, a JWKS endpoint), driven through the full redirect flow
with a real HTTP client: LuxMail's sign-in page → "Sign in with …" → the provider's
authorization form → LuxMail's callback (code exchange, ID-token signature, nonce,
PKCE) → LuxMail's MFA prompt, or straight in when the ID token's ``amr`` asserts MFA.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from html import unescape
from urllib.parse import urljoin, urlsplit

import pyotp
import pytest
import requests
from django.contrib.auth import get_user_model
from django_otp.plugins.otp_totp.models import TOTPDevice

from luxmail import roles
from luxmail.models import AuditEvent
from luxmail.testing import screenshot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PROVIDER = "Test IdP"
GROUP_ROLES = ["lux-marketing=Marketer", "lux-admins=Admin"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    """A real OpenID provider on 127.0.0.1 (its own process), for this module's tests."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{base}/.well-known/openid-configuration", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the OIDC provider did not start: {process.stderr.read()!r}"  # type: ignore[union-attr]
                )
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def oidc(settings, provider):
    """LuxMail configured for the provider, as the LUXMAIL_OIDC_* settings would."""
    discovery = requests.get(f"{provider}/.well-known/openid-configuration", timeout=5).json()
    assert "RS256" in discovery["id_token_signing_alg_values_supported"]
    settings.LUXMAIL_OIDC_CLIENT_ID = settings.OIDC_RP_CLIENT_ID = "luxmail"
    settings.OIDC_RP_CLIENT_SECRET = "test-client-secret"
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = discovery["authorization_endpoint"]
    settings.OIDC_OP_TOKEN_ENDPOINT = discovery["token_endpoint"]
    settings.OIDC_OP_USER_ENDPOINT = discovery["userinfo_endpoint"]
    settings.OIDC_OP_JWKS_ENDPOINT = discovery["jwks_uri"]
    settings.LUXMAIL_OIDC_PROVIDER_NAME = PROVIDER
    settings.LUXMAIL_SSO_GROUP_ROLES = GROUP_ROLES
    settings.AUTHENTICATION_BACKENDS = [
        *settings.AUTHENTICATION_BACKENDS,
        "luxmail.accounts.sso.backends.OIDCBackend",
    ]
    return provider


def idp_user(provider: str, sub: str, **claims: object) -> None:
    """Create or replace the provider's account ``sub`` (its ID-token claims)."""
    response = requests.put(
        f"{provider}/users/{sub}",
        data=json.dumps(claims),
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert response.status_code == 204, response.text


def sign_in(live_server, sub: str) -> requests.Response:
    """The whole round trip, as a browser makes it; returns LuxMail's last answer."""
    browser = requests.Session()
    page = browser.get(f"{live_server.url}/accounts/login/", timeout=10)
    assert page.status_code == 200
    match = re.search(r'href="([^"]+)"[^>]*>Sign in with ' + re.escape(PROVIDER), page.text)
    assert match, "no SSO button on the sign-in page"
    to_provider = browser.get(
        urljoin(page.url, unescape(match.group(1))), allow_redirects=False, timeout=10
    )
    assert to_provider.status_code == 302
    authorize_url = to_provider.headers["Location"]
    assert authorize_url.startswith(settings_authorize_prefix(authorize_url))
    form = browser.get(authorize_url, timeout=10)
    assert form.status_code == 200 and 'name="sub"' in form.text
    # The user authenticates at the provider: the redirects lead back to LuxMail.
    return browser.post(authorize_url, data={"sub": sub}, timeout=20)


def settings_authorize_prefix(url: str) -> str:
    parts = urlsplit(url)
    assert parts.path.endswith("/oauth2/authorize")
    assert "code_challenge=" in parts.query and "nonce=" in parts.query
    return f"{parts.scheme}://{parts.netloc}"


def actions(*names: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action__in=names).order_by("id"))


def test_sso_without_idp_mfa_lands_on_luxmail_mfa_prompt_and_maps_roles(
    oidc, live_server, make_user
):
    user = make_user(roles.VIEWER, username="dana")
    idp_user(oidc, "dana-sub", email="DANA@staff.example", groups=["lux-marketing"], amr=["pwd"])

    response = sign_in(live_server, "dana-sub")

    assert response.status_code == 200
    assert urlsplit(response.url).path == "/accounts/mfa/"  # LuxMail's own second factor
    assert set(user.groups.values_list("name", flat=True)) == {roles.MARKETER}
    (login,) = actions("auth.login")
    assert login.actor_id == user.pk
    assert login.details == {"factor": "sso", "protocol": "oidc", "idp_mfa": False}
    (changed,) = actions("auth.sso_roles")
    assert changed.details["added"] == [roles.MARKETER]
    assert changed.details["removed"] == [roles.VIEWER]
    assert not actions("auth.mfa_verified")


def test_sso_with_idp_mfa_goes_straight_to_the_dashboard(oidc, live_server, make_user):
    user = make_user(roles.MARKETER, username="erin", totp=False)
    idp_user(
        oidc, "erin-sub", email="erin@staff.example", groups=["lux-marketing"], amr=["pwd", "mfa"]
    )

    response = sign_in(live_server, "erin-sub")

    assert response.status_code == 200
    assert urlsplit(response.url).path == "/"
    assert "Sign in to LuxMail" not in response.text
    (verified,) = actions("auth.mfa_verified")
    assert verified.actor_id == user.pk
    assert verified.details == {"factor": "idp:oidc"}


def test_acr_value_configured_as_mfa_counts(oidc, live_server, make_user, settings):
    settings.LUXMAIL_OIDC_MFA_ACR = ["urn:example:loa:mfa"]
    make_user(roles.MARKETER, username="finn", totp=False)
    idp_user(
        oidc,
        "finn-sub",
        email="finn@staff.example",
        groups=["lux-marketing"],
        acr="urn:example:loa:mfa",
    )

    response = sign_in(live_server, "finn-sub")

    assert urlsplit(response.url).path == "/"


def test_unknown_email_is_refused_unless_provisioning_is_on(oidc, live_server, settings):
    idp_user(oidc, "gil-sub", email="gil@staff.example", groups=["lux-admins"], amr=["mfa"])

    response = sign_in(live_server, "gil-sub")

    assert urlsplit(response.url).path == "/accounts/login/"
    assert "Single sign-on did not sign you in" in response.text
    assert not get_user_model().objects.filter(email__iexact="gil@staff.example").exists()
    (failed,) = actions("auth.login_failed")
    assert failed.details == {"stage": "sso", "protocol": "oidc", "reason": "unknown_user"}

    settings.LUXMAIL_SSO_CREATE_USERS = True
    response = sign_in(live_server, "gil-sub")

    assert urlsplit(response.url).path == "/"
    created = get_user_model().objects.get(email="gil@staff.example")
    assert not created.has_usable_password()
    assert list(created.groups.values_list("name", flat=True)) == [roles.ADMIN]
    (provisioned,) = actions("auth.sso_provisioned")
    assert provisioned.details == {"protocol": "oidc", "roles": [roles.ADMIN]}


def test_groups_mapping_to_no_role_are_refused(oidc, live_server, make_user):
    user = make_user(roles.MARKETER, username="hal")
    idp_user(oidc, "hal-sub", email="hal@staff.example", groups=["somebody-else"], amr=["mfa"])

    response = sign_in(live_server, "hal-sub")

    assert urlsplit(response.url).path == "/accounts/login/"
    assert list(user.groups.values_list("name", flat=True)) == [roles.MARKETER]
    (failed,) = actions("auth.login_failed")
    assert failed.details["reason"] == "no_role"


def test_forged_callback_is_refused_without_an_error_page(oidc, live_server):
    browser = requests.Session()
    response = browser.get(f"{live_server.url}/oidc/callback/?code=forged&state=forged", timeout=10)
    assert response.status_code < 500
    assert urlsplit(response.url).path == "/accounts/login/"


@pytest.mark.browser
def test_browser_signs_in_through_the_provider_then_luxmail_totp(
    oidc, live_server, make_user, browser_page
):
    """The same round trip in Chromium: the button, the provider's page, the TOTP prompt."""
    user = make_user(roles.MARKETER, username="quinn")
    idp_user(oidc, "quinn-sub", email="quinn@staff.example", groups=["lux-marketing"])
    page = browser_page
    page.goto("/campaigns/")
    page.wait_for_url("**/accounts/login/**")
    screenshot(page, "sso-oidc-login")
    page.click(f"text=Sign in with {PROVIDER}")
    page.wait_for_url(f"{oidc}/oauth2/authorize**")
    screenshot(page, "sso-oidc-provider")
    page.fill("input[name=sub]", "quinn-sub")
    page.click("button:has-text('Authorize')")
    page.wait_for_url("**/accounts/mfa/**")
    screenshot(page, "sso-oidc-mfa")
    device = TOTPDevice.objects.get(user=user)
    page.fill("#id_token", pyotp.TOTP(base64.b32encode(device.bin_key).decode()).now())
    page.click("form:has(#id_token) button[type=submit]")
    page.wait_for_url(f"{live_server.url}/campaigns/")
    assert actions("auth.login")[0].details["factor"] == "sso"
