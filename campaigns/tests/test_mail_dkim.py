"""MIME bytes parse back correctly; DKIM signatures verify with dkimpy."""

from __future__ import annotations

import email
import email.policy

import dkim
import pytest
from hypothesis import given
from hypothesis import strategies as st

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


# --- canonicalizations and edge cases, proved by dkimpy --------------------------------

_KEYS = {algorithm: signing.generate_key(algorithm) for algorithm in (signing.RSA, signing.ED25519)}


def _verify(signed: bytes, algorithm: str) -> bool:
    record = signing.dns_record_value(algorithm, _KEYS[algorithm].public_b64).encode()
    return bool(dkim.verify(signed, dnsfunc=lambda name, timeout=5: record))


def _signer(algorithm: str, canonicalization: str) -> signing.Signer:
    if algorithm == signing.ED25519:
        import nacl  # noqa: F401  # dkimpy verifies Ed25519 with PyNaCl (dev dependency)
    return signing.Signer(
        domain="clinic.example",
        selector="lm1",
        algorithm=algorithm,
        private_pem=_KEYS[algorithm].private_pem,
        canonicalization=canonicalization,
    )


_EDGE_CASES = {
    "trailing whitespace": b"From: a@clinic.example\r\nTo: b@example.test\r\n"
    b"Subject: x\r\n\r\nline with spaces   \r\ntab\t\r\n\r\n\r\n",
    "empty body": b"From: a@clinic.example\r\nTo: b@example.test\r\nSubject: x\r\n\r\n",
    "no body separator": b"From: a@clinic.example\r\nTo: b@example.test\r\nSubject: x\r\n",
    "folded headers": b"From: a@clinic.example\r\nTo: b@example.test,\r\n\tc@example.test\r\n"
    b"Subject:  a  subject\r\n  folded   twice\r\n \there\r\n\r\nbody\r\n",
    "duplicated headers": b"From: a@clinic.example\r\nTo: first@example.test\r\n"
    b"Subject: one\r\nTo: second@example.test\r\nSubject: two\r\n\r\nbody\r\n",
    "long lines": b"From: a@clinic.example\r\nTo: b@example.test\r\nSubject: "
    + b"word " * 300
    + b"\r\n\r\n"
    + b"x" * 5000
    + b"\r\n"
    + b"y  " * 2000
    + b"\r\n",
    "whitespace-only body": b"From: a@clinic.example\r\nSubject: x\r\n\r\n  \r\n\t\r\n",
}


@pytest.mark.parametrize("canonicalization", signing.CANONICALIZATIONS)
@pytest.mark.parametrize("algorithm", [signing.RSA, signing.ED25519])
@pytest.mark.parametrize("case", sorted(_EDGE_CASES))
def test_every_canonicalization_verifies_on_edge_cases(
    case: str, algorithm: str, canonicalization: str
) -> None:
    message = _EDGE_CASES[case]
    signed = _signer(algorithm, canonicalization).sign(message)
    assert f"c={canonicalization};".encode() in signed.split(b"\r\n", 1)[0]
    assert _verify(signed, algorithm)
    # Changing the signed (last) Subject or the body breaks it.
    at = signed.partition(b"\r\n\r\n")[0].rfind(b"Subject:") + len(b"Subject:")
    assert not _verify(signed[:at] + b" re:" + signed[at:], algorithm)
    separator = b"" if b"\r\n\r\n" in message else b"\r\n"
    assert not _verify(signed + separator + b"more\r\n", algorithm)
    # Extra spaces in a header value: forgiven by "relaxed" headers, not by "simple".
    spaced = signed[:at] + b"   " + signed[at:]
    assert _verify(spaced, algorithm) == canonicalization.startswith("relaxed/")


@pytest.mark.parametrize("canonicalization", signing.CANONICALIZATIONS)
def test_signing_built_fields_equals_signing_the_bytes(canonicalization: str) -> None:
    """The send pipeline signs the fields it built (no parsing back): same signature."""
    signer = _signer(signing.RSA, canonicalization)
    built = mail.build_parts(
        mail.Envelope(
            from_name="Clinique Saint-Éloi",
            from_email="news@clinic.example",
            to_email="ann@example.test",
            subject="Ihre Untersuchung — bitte bestätigen Sie den Termin " * 3,
            html="<p>Hello</p>   \n\n",
            text="Hello  \n",
            message_id="<abc.1@clinic.example>",
            list_unsubscribe="https://lux.example/u/token/",
            feedback_id="1:campaign:luxmail",
        )
    )
    fields = [(n.encode(), v.encode()) for n, v in built.fields]
    header = signer.header(fields, built.body, timestamp=1_700_000_000)
    assert header + built.message() == signer.sign(built.message(), timestamp=1_700_000_000)
    assert _verify(header + built.message(), signing.RSA)


@pytest.mark.parametrize("canonicalization", signing.CANONICALIZATIONS)
@pytest.mark.parametrize("algorithm", [signing.RSA, signing.ED25519])
def test_signing_text_fields_equals_signing_bytes(algorithm: str, canonicalization: str) -> None:
    """``Signer.header_text`` (the send path: text fields, layouts and shared fields
    remembered per signer) writes exactly what ``Signer.header`` writes, message after
    message with the same signer, and dkimpy verifies it."""
    signer = _signer(algorithm, canonicalization)
    for case in sorted(_EDGE_CASES) * 2:
        fields, body = signing.split_message(_EDGE_CASES[case])
        text = [(n.decode(), v.decode()) for n, v in fields]
        header = signer.header_text(text, body, timestamp=1_700_000_000)
        assert header == signer.header(fields, body, timestamp=1_700_000_000), case
        assert _verify(header + _EDGE_CASES[case], algorithm), case
    for to in ("ann@example.test", "bob@example.test", "ann@example.test"):
        built = mail.build_parts(
            mail.Envelope(
                from_name="Clinique Saint-Éloi",
                from_email="news@clinic.example",
                to_email=to,
                subject="Ihre Untersuchung — bitte bestätigen Sie den Termin " * 3,
                html="<p>Hello</p>   \n\n",
                text="Hello  \n",
                message_id=f"<{to}.1@clinic.example>",
                reply_to="desk@clinic.example",
                list_unsubscribe="https://lux.example/u/token/",
                feedback_id="1:campaign:luxmail",
            )
        )
        header = signer.header_text(built.fields, built.body)
        assert _verify(header + built.message(), algorithm)
        # Another recipient's To in a remembered layout must not verify.
        forged = built.message().replace(to.encode(), b"eve@example.test")
        assert not _verify(header + forged, algorithm)


def test_headers_are_folded_and_encoded() -> None:
    long_ascii = "Your yearly check-up is due: " + "book a visit this month " * 6
    for subject in (long_ascii, "Ihre Untersuchung — bitte bestätigen " * 4):
        raw = _message(subject=subject)
        head = raw.split(b"\r\n\r\n", 1)[0]
        assert all(len(line) <= 78 for line in head.split(b"\r\n") if b"ubject" in line)
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert parsed["Subject"] == subject.strip()
    raw = _message(subject="Ihre Untersuchung — bitte bestätigen " * 4)
    lines = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    encoded = [line for line in lines if b"=?utf-8?b?" in line]
    assert len(encoded) > 1 and all(len(line) <= 76 for line in encoded)  # RFC 2047 §2
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Message-ID"] == "<abc.1@clinic.example>"
    assert parsed["Date"] is not None
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


@given(st.lists(st.sampled_from(["", "a", "word", "x" * 40, "y" * 90]), max_size=40))
def test_folding_unfolds_to_the_value(words: list[str]) -> None:
    value = " ".join(words)
    folded = mail.fold("Subject", value)
    assert folded.replace("\r\n", "") == value
    lines = ("Subject: " + folded).split("\r\n")
    assert all(line.strip() for line in lines[1:])  # no whitespace-only line
    # A line is longer than 78 only when it is one word that cannot be split.
    assert all(len(line) <= 78 or " " not in line.strip() for line in lines[1:])
