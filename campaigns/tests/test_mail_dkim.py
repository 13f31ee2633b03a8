"""MIME bytes parse back correctly; DKIM signatures verify with dkimpy."""

from __future__ import annotations

import email
import email.policy

import dkim
import pytest

from campaigns.senders import signing
from campaigns.sending import mail


def _message(**extra: str) -> bytes:
    return mail.build(
        mail.Envelope(
            from_name="Springfield Clinic",
            from_email="news@clinic.example",
            to_email="ann@example.test",
            subject=extra.get("subject", "Hello Ann — your visit"),
            html="<p>Hello Ann,</p>\n<p>" + "long line " * 30 + "</p>\n.leading dot\n",
            text="Hello Ann,\n\n.leading dot\n",
            message_id="<abc.1@clinic.example>",
            reply_to="desk@clinic.example",
            list_unsubscribe="https://lux.example/u/token/",
        )
    )


def test_message_parses_back() -> None:
    parsed = email.message_from_bytes(_message(), policy=email.policy.default)
    assert parsed["Subject"] == "Hello Ann — your visit"
    assert parsed["List-Unsubscribe"] == "<https://lux.example/u/token/>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed.get_content_type() == "multipart/alternative"
    text, html = parsed.get_payload()
    assert text.get_content().replace("\r\n", "\n") == "Hello Ann,\n\n.leading dot\n"
    assert "long line " * 30 in html.get_content()


def test_header_injection_is_impossible() -> None:
    raw = _message(subject="Hi\r\nBcc: victim@example.test")
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Bcc"] is None
    assert "Bcc: victim" in parsed["Subject"]


@pytest.mark.parametrize("algorithm", [signing.RSA, signing.ED25519])
def test_dkim_signature_verifies(algorithm: str) -> None:
    if algorithm == signing.ED25519:
        import nacl  # noqa: F401  # dkimpy verifies Ed25519 with PyNaCl (dev dependency)
    key = signing.generate_key(algorithm)
    signer = signing.Signer(
        domain="clinic.example", selector="lm1", algorithm=algorithm, private_pem=key.private_pem
    )
    signed = signer.sign(_message())
    record = signing.dns_record_value(algorithm, key.public_b64).encode()

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"lm1._domainkey.clinic.example."
        return record

    assert dkim.verify(signed, dnsfunc=dns)
    header = signed.split(b"\r\n\r\n", 1)[0].lower()
    assert b"list-unsubscribe:list-unsubscribe-post" in header.replace(b"\r\n\t", b"")
    tampered = signed.replace(b"Hello Ann,", b"Hello Bob,", 1)
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_canonical_body_matches_dkimpy() -> None:
    from dkim.canonicalization import Relaxed

    for body in [b"", b"\r\n", b"a  b \r\n\r\n\r\n", b"x\ty\r\nz", b" lead\r\n"]:
        assert signing.canonical_body(body) == Relaxed.canonicalize_body(body), body


def test_simple_body_matches_dkimpy() -> None:
    from dkim.canonicalization import Simple

    for body in [b"", b"\r\n", b"a  b \r\n\r\n\r\n", b"x\ty\r\nz\r\n", b"\r\n\r\n"]:
        assert signing.simple_body(body) == Simple.canonicalize_body(body), body


def test_canonical_header_matches_dkimpy() -> None:
    from dkim.canonicalization import Relaxed

    for name, value in [
        (b"Subject", b" Hello  there \r\n\tworld "),
        (b"To", b" ann@example.test"),
        (b"X-Tab", b"\ta\tb "),
        (b"Subject", b" =?utf-8?b?SGk=?=\r\n =?utf-8?b?SGk=?="),
    ]:
        expected = Relaxed.canonicalize_headers([(name, value + b"\r\n")])[0]
        assert signing.canonical_header(name, value) + b"\r\n" == expected[0] + b":" + expected[1]
