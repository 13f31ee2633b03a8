"""SAML 2.0 sign-in with a real identity provider: pysaml2's IdP (``saml2.server.Server``)
reads LuxMail's AuthnRequest, signs an assertion with xmlsec1 and its own key, and the
response is posted to djangosaml2's ACS endpoint, as the browser would carry it.

Also: SSO switched off (the default) leaves the endpoints at 404 and the sign-in page
without buttons.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from saml2 import BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NameID
from saml2.server import Server

from luxmail import roles
from luxmail.accounts.sso.config import saml_config
from luxmail.models import AuditEvent

pytestmark = [
    pytest.mark.tools,
    pytest.mark.skipif(shutil.which("xmlsec1") is None, reason="needs xmlsec1"),
]

IDP = "https://idp.test/saml"
SP = "http://testserver/saml2/metadata/"
PASSWORD_CONTEXT = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
MFA_CONTEXT = "https://refeds.org/profile/mfa"


@pytest.fixture
def saml(settings, tmp_path, client):
    """LuxMail as SP trusting a pysaml2 IdP whose key and metadata live in ``tmp_path``."""
    key, cert = tmp_path / "idp.key", tmp_path / "idp.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=idp.test", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    idp_config = IdPConfig()
    idp_config.load(
        {
            "entityid": IDP,
            "xmlsec_binary": shutil.which("xmlsec1"),
            "key_file": str(key),
            "cert_file": str(cert),
            "service": {
                "idp": {
                    "endpoints": {
                        "single_sign_on_service": [(f"{IDP}/sso/redirect", BINDING_HTTP_REDIRECT)],
                    },
                    "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                    "sign_assertion": True,
                    "policy": {
                        "default": {"entity_categories": [], "fail_on_missing_requested": False}
                    },
                },
            },
        }
    )
    idp_metadata = tmp_path / "idp.xml"
    idp_metadata.write_bytes(create_metadata_string(None, config=idp_config, valid=1))

    settings.LUXMAIL_SAML_IDP_METADATA = str(idp_metadata)
    settings.LUXMAIL_SAML_PROVIDER_NAME = "Hospital SAML"
    settings.LUXMAIL_SSO_GROUP_ROLES = ["lux-phi=PHI Marketer"]
    settings.SAML_CONFIG = saml_config(
        entity_id=SP,
        base_url="http://testserver",
        idp_metadata=str(idp_metadata),
        xmlsec_binary=shutil.which("xmlsec1") or "xmlsec1",
    )
    settings.AUTHENTICATION_BACKENDS = [
        *settings.AUTHENTICATION_BACKENDS,
        "luxmail.accounts.sso.backends.SAMLBackend",
    ]
    # The IdP knows LuxMail from the SP metadata LuxMail publishes.
    sp_metadata = client.get("/saml2/metadata/")
    assert sp_metadata.status_code == 200
    (tmp_path / "sp.xml").write_bytes(sp_metadata.content)
    idp_config.metadata = idp_config.load_metadata({"local": [str(tmp_path / "sp.xml")]})
    return Server(config=idp_config)


def idp_sign_in(client, idp: Server, *, email: str, groups: list[str], context: str):
    """LuxMail → IdP (HTTP-Redirect AuthnRequest) → signed Response POSTed to the ACS."""
    start = client.get("/saml2/login/?next=/")
    assert start.status_code == 302
    location = urlsplit(start["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{IDP}/sso/redirect"
    query = parse_qs(location.query)
    request = idp.parse_authn_request(query["SAMLRequest"][0], BINDING_HTTP_REDIRECT)
    response = idp.create_authn_response(
        identity={"email": [email], "groups": groups},
        in_response_to=request.message.id,
        destination=request.message.assertion_consumer_service_url,
        sp_entity_id=request.message.issuer.text,
        name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=email),
        authn={"class_ref": context, "authn_auth": IDP},
        sign_assertion=True,
    )
    return client.post(
        urlsplit(request.message.assertion_consumer_service_url).path,
        {
            "SAMLResponse": base64.b64encode(str(response).encode()).decode(),
            "RelayState": query.get("RelayState", ["/"])[0],
        },
    )


def actions(name: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=name).order_by("id"))


@pytest.mark.django_db
def test_saml_password_only_sign_in_needs_luxmail_mfa(saml, client, make_user):
    user = make_user(roles.MARKETER, username="ines")

    response = idp_sign_in(
        client, saml, email="ines@staff.example", groups=["lux-phi"], context=PASSWORD_CONTEXT
    )

    assert response.status_code == 302
    assert int(client.session["_auth_user_id"]) == user.pk
    follow = client.get("/")
    assert follow.status_code == 302 and follow["Location"].startswith("/accounts/mfa/")
    assert set(user.groups.values_list("name", flat=True)) == {roles.PHI_MARKETER}
    (login,) = actions("auth.login")
    assert login.details == {"factor": "sso", "protocol": "saml", "idp_mfa": False}


@pytest.mark.django_db
def test_saml_mfa_context_signs_straight_in(saml, client, make_user):
    user = make_user(roles.PHI_MARKETER, username="jon", totp=False)

    idp_sign_in(client, saml, email="jon@staff.example", groups=["lux-phi"], context=MFA_CONTEXT)

    assert client.get("/").status_code == 200
    (verified,) = actions("auth.mfa_verified")
    assert verified.actor_id == user.pk and verified.details == {"factor": "idp:saml"}


@pytest.mark.django_db
def test_tampered_saml_response_is_refused(saml, client, make_user):
    make_user(roles.MARKETER, username="kim")
    start = client.get("/saml2/login/?next=/")
    query = parse_qs(urlsplit(start["Location"]).query)
    request = saml.parse_authn_request(query["SAMLRequest"][0], BINDING_HTTP_REDIRECT)
    response = saml.create_authn_response(
        identity={"email": ["kim@staff.example"], "groups": ["lux-phi"]},
        in_response_to=request.message.id,
        destination=request.message.assertion_consumer_service_url,
        sp_entity_id=request.message.issuer.text,
        name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text="kim@staff.example"),
        authn={"class_ref": PASSWORD_CONTEXT, "authn_auth": IDP},
        sign_assertion=True,
    )
    forged = str(response).replace(PASSWORD_CONTEXT, MFA_CONTEXT)

    answer = client.post(
        "/saml2/acs/", {"SAMLResponse": base64.b64encode(forged.encode()).decode()}
    )

    assert answer.status_code == 302 and answer["Location"] == "/accounts/login/?sso=failed"
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_garbage_saml_response_is_a_friendly_failure(saml, client):
    for body in ("not base64!", base64.b64encode(b"<x>" * 10_000).decode(), ""):
        answer = client.post("/saml2/acs/", {"SAMLResponse": body})
        assert answer.status_code < 500


@pytest.mark.django_db
def test_sso_off_by_default(client):
    page = client.get("/accounts/login/")
    assert page.status_code == 200
    assert b"Sign in with" not in page.content
    for path in ("/oidc/authenticate/", "/oidc/callback/", "/saml2/login/", "/saml2/acs/"):
        assert client.get(path).status_code == 404


def test_xmlsec1_is_installed_where_the_settings_expect_it():
    assert Path("/usr/bin/xmlsec1").exists() or shutil.which("xmlsec1")
