"""Messages built with a campaign's shared fields (``mail.Fixed``) are the same messages,
whatever the recipient's text contains, and verify with dkimpy."""

from __future__ import annotations

import email
import email.policy
import random

import dkim
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns.senders import signing
from campaigns.sending import mail

FIXED = mail.Fixed.of(
    from_name="Springfield Clinic",
    from_email="news@clinic.example",
    reply_to="desk@clinic.example",
    feedback_id="7:spring:luxmail",
)


def _built(text: str, html: str) -> mail.Built:
    return mail.build_with(
        FIXED,
        to_email="ann@example.test",
        subject="Hello Ann",
        html=html,
        text=text,
        message_id="<abc.7@clinic.example>",
        list_unsubscribe="https://lux.example/u/token/",
    )


def test_shared_fields_give_the_message_build_parts_gives() -> None:
    envelope = mail.Envelope(
        from_name="Springfield Clinic",
        from_email="news@clinic.example",
        to_email="ann@example.test",
        subject="Hello Ann",
        html="<p>Hi</p>\n",
        text="Hi\n",
        message_id="<abc.7@clinic.example>",
        reply_to="desk@clinic.example",
        list_unsubscribe="https://lux.example/u/token/",
        feedback_id="7:spring:luxmail",
    )
    general = mail.build_parts(envelope)
    shared = _built("Hi\n", "<p>Hi</p>\n")
    boundary = dict(general.fields)["Content-Type"].split('"')[1]
    swap = {boundary: FIXED.boundary}
    assert [(n, v.replace(boundary, swap[boundary])) for n, v in general.fields] == shared.fields
    assert general.body.replace(boundary.encode(), FIXED.boundary.encode()) == shared.body


@settings(max_examples=60, deadline=None)
@given(
    text=st.text(max_size=300),
    html=st.text(max_size=300),
)
def test_no_recipient_text_can_end_a_part_early(text: str, html: str) -> None:
    """The boundary is shared by every message: the parts must come back exactly even
    when a contact's text contains it (quoted-printable writes '=' as '=3D')."""
    hostile = f"--{FIXED.boundary}\n{text}\n--{FIXED.boundary}--\n=_lm_"
    built = _built(hostile, html + hostile)
    parsed = email.message_from_bytes(built.message(), policy=email.policy.default)
    plain, markup = parsed.get_payload()
    normalized = hostile.replace("\r\n", "\n").replace("\r", "\n")
    assert plain.get_content().replace("\r\n", "\n") == normalized
    assert markup.get_content().replace("\r\n", "\n") == (html + hostile).replace(
        "\r\n", "\n"
    ).replace("\r", "\n")


def test_shared_fields_sign_and_verify() -> None:
    key = signing.generate_key(signing.RSA)
    signer = signing.Signer(
        domain="clinic.example", selector="lm1", algorithm=signing.RSA, private_pem=key.private_pem
    )
    built = _built(f"--{FIXED.boundary}\nHi\n", "<p>Hi</p>\n")
    head = signer.header([(n.encode(), v.encode()) for n, v in built.fields], built.body)
    record = signing.dns_record_value(signing.RSA, key.public_b64).encode()
    assert dkim.verify(head + built.message(), dnsfunc=lambda name, timeout=5: record)


_QP_PIECES = [" ", "\t", ".", "=", "a", "é", "\n", "\r", "\r\n", "x" * 70, "  \n", "\u2603", "_"]


def _qp_equal(text: str) -> None:
    expected = mail.quoted_printable_whole(text)
    assert mail.quoted_printable(text) == expected, repr(text)
    assert mail.quoted_printable(text) == expected, repr(text)  # from the memo


def test_quoted_printable_by_line_is_the_whole_encoding() -> None:
    """Line by line with a memo writes exactly what one b2a_qp call over the whole text
    writes: trailing spaces and tabs before a break and at the end, a lone dot, lines
    beyond 76 characters (soft breaks next to a trailing space), CR and CRLF."""
    generator = random.Random(20261207)
    for _ in range(20_000):
        _qp_equal("".join(generator.choices(_QP_PIECES, k=generator.randint(0, 30))))
    for width in range(70, 80):
        for tail in (" ", "\t", " \t", "=", "."):
            _qp_equal("y" * width + tail + "\nnext" + tail)


@settings(max_examples=300, suppress_health_check=list(HealthCheck))
@given(st.text(max_size=300))
def test_quoted_printable_by_line_on_any_text(text: str) -> None:
    _qp_equal(text)


@settings(max_examples=300, suppress_health_check=list(HealthCheck))
@given(st.text(alphabet=st.sampled_from(["a", " ", "\t", "\r", "\n", "\x00", "é", "\u2028"])))
def test_header_text_removes_breaks_and_nuls_as_translating_does(value: str) -> None:
    assert mail.header_text(value) == value.translate(mail._CTRL).strip()
