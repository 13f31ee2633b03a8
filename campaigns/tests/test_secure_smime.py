"""S/MIME (campaigns/secure/smime.py) against the real ``openssl cms`` on this machine."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID

from campaigns.secure.errors import CertificateError, SigningKeyError
from campaigns.tests.smtp_fixtures import IssuedCertificate, TestCA
from luxmail.securemail import smime
from luxmail.testing import require

pytestmark = pytest.mark.tools

PHI_SUBJECT = "Your A1C result is 7.2"
BODY = "<p>Dear Ana,</p>\r\n<p>Your A1C result is 7.2 %. Café: 8\u20135.</p>\r\n".encode()


def rendered(to: str = "ana@example.org") -> bytes:
    return (
        "From: Springfield Clinic <news@clinic.example>\r\n"
        f"To: {to}\r\n"
        f"Subject: {PHI_SUBJECT}\r\n"
        "Date: Tue, 02 Jun 2026 10:00:00 +0000\r\n"
        "Message-ID: <m2.abc@clinic.example>\r\n"
        "List-Unsubscribe: <https://lux.example/u/tok456>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: text/html; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
    ).encode() + BODY


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("smime-ca"))


@pytest.fixture(scope="module")
def recipient(ca: TestCA) -> IssuedCertificate:
    return ca.issue_email("ana@example.org")


def openssl(*args: str | Path, input: bytes | None = None) -> bytes:
    require(shutil.which("openssl") is not None, "openssl is not installed")
    result = subprocess.run(
        ["openssl", *map(str, args)], input=input, capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout


# --- validation ------------------------------------------------------------------------


def test_valid_certificate_metadata(recipient: IssuedCertificate) -> None:
    info = smime.validate_certificate(recipient.cert_pem, email="Ana@Example.org")
    assert info.key_algorithm == "RSA 2048"
    assert info.issuer == "CN=LuxMail Test CA"
    assert not info.self_signed
    assert info.pem.startswith("-----BEGIN CERTIFICATE-----")
    assert len(info.fingerprint_sha256) == 64
    # DER and a PKCS#7 bundle with the CA certificate are accepted as well.
    der = recipient.certificate.public_bytes(serialization.Encoding.DER)
    assert smime.validate_certificate(der, email="ana@example.org") == info


def test_bundle_with_issuer_picks_the_personal_certificate(
    ca: TestCA, recipient: IssuedCertificate
) -> None:
    bundle = pkcs7.serialize_certificates(
        [ca.certificate, recipient.certificate], serialization.Encoding.PEM
    )
    info = smime.validate_certificate(bundle, email="ana@example.org")
    assert (
        info.fingerprint_sha256
        == smime.validate_certificate(
            recipient.cert_pem, email="ana@example.org"
        ).fingerprint_sha256
    )
    chain = recipient.cert_pem + ca.certificate.public_bytes(serialization.Encoding.PEM)
    assert smime.validate_certificate(chain, email="ana@example.org") == info


def test_email_in_subject_only_is_accepted(ca: TestCA) -> None:
    issued = ca.issue_email("bo@example.org", in_san=False, in_subject=True)
    assert smime.certificate_usable(issued.cert_pem, email="bo@example.org")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (
            lambda ca: ca.issue_email(
                "x@example.org",
                not_after=_now() - dt.timedelta(days=1),
                not_before=_now() - dt.timedelta(days=30),
            ),
            "expired",
        ),
        (
            lambda ca: ca.issue_email("x@example.org", not_before=_now() + dt.timedelta(days=2)),
            "not_yet_valid",
        ),
        (lambda ca: ca.issue_email("x@example.org", key_usage="sign_only"), "key_usage"),
        (
            lambda ca: ca.issue_email(
                "x@example.org", extended_key_usage=[ExtendedKeyUsageOID.SERVER_AUTH]
            ),
            "extended_key_usage",
        ),
        (
            lambda ca: ca.issue_email(
                "x@example.org", key=ec.generate_private_key(ec.SECP256R1()), key_usage=None
            ),
            "unsupported_key",
        ),
        (lambda ca: ca.issue_email("x@example.org", rsa_bits=1024), "weak_key"),
        (lambda ca: ca.issue_email("x@example.org", in_san=False), "no_email"),
        (lambda ca: ca.issue_email("someone.else@example.org"), "email_mismatch"),
        (lambda ca: ca.issue_email("x@example.org", ca=True), "ca_certificate"),
    ],
)
def test_unusable_certificates_are_refused(ca: TestCA, make, code: str) -> None:
    issued = make(ca)
    with pytest.raises(CertificateError) as raised:
        smime.validate_certificate(issued.cert_pem, email="x@example.org")
    assert raised.value.code == code
    assert "@" not in str(raised.value)  # no address in the message
    assert not smime.certificate_usable(issued.cert_pem, email="x@example.org")


def test_malformed_uploads(recipient: IssuedCertificate, ca: TestCA) -> None:
    other = ca.issue_email("ana@example.org")
    cases = {
        b"": "empty",
        b"not a certificate": "parse",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n": "parse",
        recipient.cert_pem + recipient.key_pem: "private_key",
        recipient.cert_pem + other.cert_pem: "several_certificates",
        b"x" * (smime.MAX_CERTIFICATE_BYTES + 1): "too_large",
    }
    for upload, code in cases.items():
        with pytest.raises(CertificateError) as raised:
            smime.validate_certificate(upload, email="ana@example.org")
        assert raised.value.code == code, upload[:30]


# --- encryption ------------------------------------------------------------------------


def test_openssl_decrypts_with_aes_256(tmp_path: Path, recipient: IssuedCertificate) -> None:
    wire = smime.encrypt_message(
        rendered(), recipient.cert_pem, outer_subject="A secure message from your clinic"
    )
    outer = email.message_from_bytes(wire, policy=email.policy.default)
    assert outer.get_content_type() == "application/pkcs7-mime"
    assert outer.get_param("smime-type") == "enveloped-data"
    assert outer["Subject"] == "A secure message from your clinic"
    assert outer["To"] == "ana@example.org"
    assert outer["Message-ID"] == "<m2.abc@clinic.example>"
    assert outer["List-Unsubscribe"] == "<https://lux.example/u/tok456>"
    assert PHI_SUBJECT.encode() not in wire and b"A1C" not in wire

    message = tmp_path / "message.eml"
    message.write_bytes(wire)
    plaintext = openssl(
        "cms",
        "-decrypt",
        "-in",
        message,
        "-recip",
        recipient.cert_path,
        "-inkey",
        recipient.key_path,
    )
    assert plaintext.split(b"\r\n\r\n", 1)[1] == BODY
    inner = email.message_from_bytes(plaintext, policy=email.policy.default)
    assert inner["Subject"] == PHI_SUBJECT
    assert inner.get_content_type() == "text/html"

    printed = openssl("cms", "-cmsout", "-print", "-in", message).decode()
    assert "contentEncryptionAlgorithm" in printed
    assert "aes-256-cbc" in printed
    assert "aes-128" not in printed


def test_openssl_smime_also_reads_it(tmp_path: Path, recipient: IssuedCertificate) -> None:
    message = tmp_path / "message.eml"
    message.write_bytes(smime.encrypt_message(rendered(), recipient.certificate))
    plaintext = openssl(
        "smime",
        "-decrypt",
        "-in",
        message,
        "-recip",
        recipient.cert_path,
        "-inkey",
        recipient.key_path,
    )
    assert plaintext.split(b"\r\n\r\n", 1)[1] == BODY


def test_sign_then_encrypt_verifies(
    tmp_path: Path, ca: TestCA, recipient: IssuedCertificate
) -> None:
    org = ca.issue_email("secure@clinic.example")
    signer = smime.load_signing_certificate(org.cert_pem, org.key_pem)
    message = tmp_path / "message.eml"
    message.write_bytes(
        smime.encrypt_message(
            rendered(), recipient.cert_pem, sign_with=signer, outer_subject="Secure message"
        )
    )
    signed = tmp_path / "signed.eml"
    signed.write_bytes(
        openssl(
            "cms",
            "-decrypt",
            "-in",
            message,
            "-recip",
            recipient.cert_path,
            "-inkey",
            recipient.key_path,
        )
    )
    inner = email.message_from_bytes(signed.read_bytes(), policy=email.policy.default)
    assert inner.get_content_type() == "multipart/signed"
    assert inner.get_param("micalg") == "sha-256"
    verified = openssl("cms", "-verify", "-in", signed, "-CAfile", ca.ca_file)
    assert verified.split(b"\r\n\r\n", 1)[1] == BODY


def test_signing_certificate_errors(ca: TestCA) -> None:
    org = ca.issue_email("secure@clinic.example")
    other = ca.issue_email("other@clinic.example")
    with pytest.raises(SigningKeyError) as raised:
        smime.load_signing_certificate(org.cert_pem, other.key_pem)
    assert raised.value.code == "key_mismatch"
    with pytest.raises(SigningKeyError) as raised:
        smime.load_signing_certificate(org.cert_pem, b"garbage")
    assert raised.value.code == "key_parse"
    expired = ca.issue_email(
        "secure@clinic.example",
        not_before=_now() - dt.timedelta(days=30),
        not_after=_now() - dt.timedelta(days=1),
    )
    with pytest.raises(SigningKeyError) as raised:
        smime.load_signing_certificate(expired.cert_pem, expired.key_pem)
    assert raised.value.code == "expired"


def test_encrypting_to_an_unusable_certificate_fails_closed(ca: TestCA) -> None:
    from campaigns.secure.errors import EncryptionError

    ec_certificate = ca.issue_email(
        "x@example.org", key=ec.generate_private_key(ec.SECP256R1()), key_usage=None
    )
    with pytest.raises(EncryptionError):
        smime.encrypt_message(rendered(), ec_certificate.certificate)
