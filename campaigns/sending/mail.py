"""Message bytes, built directly (no ``email.message`` objects on the hot path).

The send pipeline builds tens of thousands of messages per minute; assembling the
bytes ourselves (CRLF everywhere, quoted-printable bodies through ``binascii``) is
several times cheaper than ``email.message.EmailMessage`` and its generator, and the
result is plain RFC 5322 / RFC 2045 that ``email`` parses back identically (tested).

Header values are single-line: CR and LF are removed from every value, so nothing a
contact or a template author typed can add a header field.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, formataddr

_CTRL = str.maketrans({"\r": " ", "\n": " ", "\x00": ""})


def header_text(value: str) -> str:
    """A header value with line breaks and NULs removed (no header injection)."""
    if "\r" in value or "\n" in value or "\x00" in value:
        # Rare: three scans cost less than translating (per field of every message).
        value = value.translate(_CTRL)
    return value.strip()


def encode_word(value: str) -> str:
    """RFC 2047 encoding when needed: plain ASCII stays as is, else UTF-8 base64 words."""
    value = header_text(value)
    if value.isascii() and "=?" not in value:
        return value
    words: list[str] = []
    chunk = ""
    for char in value:
        # 39 bytes are 52 base64 characters: each line stays within RFC 2047's 76.
        if len((chunk + char).encode()) > 39:
            words.append(chunk)
            chunk = ""
        chunk += char
    if chunk:
        words.append(chunk)
    return "\r\n ".join(
        "=?utf-8?b?" + base64.b64encode(word.encode()).decode() + "?=" for word in words
    )


def address(name: str, email: str) -> str:
    email = header_text(email)
    name = header_text(name)
    if not name:
        return email
    if name.isascii():
        return formataddr((name, email))
    return f"{encode_word(name)} <{email}>"


def quoted_printable_whole(text: str) -> bytes:
    """``text`` quoted-printable (CRLF line ends) in one ``binascii.b2a_qp`` call: the
    reference :func:`quoted_printable` is tested equal to."""
    data = text.replace("\r\n", "\n").replace("\r", "\n").encode()
    return binascii.b2a_qp(data, quotetabs=False, istext=True).replace(b"\n", b"\r\n")


# Encoded lines by their text: most lines of a campaign's body are the same in every
# message. Bounded by the characters held (a few MB at most); started over when full.
_qp_lines: dict[str, bytes] = {}
_qp_held = [0]
_QP_MEMO_CHARS = 1_000_000


def quoted_printable(text: str) -> bytes:
    """``text`` quoted-printable with CRLF line ends, byte for byte what
    :func:`quoted_printable_whole` writes (tested), line by line with a memo.

    ``b2a_qp`` costs tens of microseconds per kilobyte; in text mode it starts every line
    afresh (the line length is reset at a line break, and trailing whitespace is
    encoded against the break that follows it), so a line ending in a break encodes
    the same alone as inside the whole text, and the lines the template repeats in
    every message are encoded once per process."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    last = lines.pop()
    memo = _qp_lines
    out = []
    for line in lines:
        encoded = memo.get(line)
        if encoded is None:
            encoded = binascii.b2a_qp((line + "\n").encode(), quotetabs=False, istext=True).replace(
                b"\n", b"\r\n"
            )
            if _qp_held[0] + len(line) > _QP_MEMO_CHARS:
                memo.clear()
                _qp_held[0] = 0
            if len(line) <= _QP_MEMO_CHARS // 4:
                memo[line] = encoded
                _qp_held[0] += len(line)
        out.append(encoded)
    if last:
        out.append(
            binascii.b2a_qp(last.encode(), quotetabs=False, istext=True).replace(b"\n", b"\r\n")
        )
    return b"".join(out)


@dataclass
class Envelope:
    """What the message is about; every value is already rendered text."""

    from_name: str
    from_email: str
    to_email: str
    subject: str
    html: str
    text: str
    message_id: str
    reply_to: str = ""
    list_unsubscribe: str = ""
    feedback_id: str = ""
    date: datetime | None = None


def new_boundary() -> str:
    return "=_lm_" + secrets.token_hex(12)


def fold(name: str, value: str) -> str:
    """``value`` folded at spaces so that lines stay within 78 characters where a space
    allows (RFC 5322 §2.2.3); a word longer than that stays whole (up to 998).
    Unfolding (removing the CRLFs) gives ``value`` back exactly."""
    if len(name) + 2 + len(value) <= 78 or " " not in value:
        return value
    words = value.split(" ")
    lines: list[str] = []
    line = words[0]
    width = 78 - len(name) - 2
    for word in words[1:]:
        # Never before an empty word (a run of spaces): a folded line of only
        # whitespace is not allowed.
        if line.strip() and word and len(line) + 1 + len(word) > width:
            lines.append(line)
            line, width = word, 77  # the continuation line starts with the space
        else:
            line = f"{line} {word}"
    lines.append(line)
    return "\r\n ".join(lines)


_date_cache: tuple[int, str] = (0, "")


def _date_now() -> str:
    """RFC 5322 date of the current second (cached: thousands of messages share one)."""
    global _date_cache
    second = int(time.time())
    if _date_cache[0] != second:
        _date_cache = (second, format_datetime(datetime.fromtimestamp(second, UTC)))
    return _date_cache[1]


_PART_HEAD = (
    b"Content-Type: text/%s; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
)


@dataclass
class Built:
    """A message as header fields and body: ``fields`` are (name, value) with the value
    exactly as written after the colon (leading space and folding included), so the
    DKIM signer canonicalizes them without parsing the message back."""

    fields: list[tuple[str, str]]
    body: bytes

    def head(self) -> bytes:
        return "".join(f"{name}:{value}\r\n" for name, value in self.fields).encode()

    def message(self) -> bytes:
        return self.head() + b"\r\n" + self.body


def _subject(value: str) -> str:
    encoded = encode_word(value)
    # Encoded words come folded already; plain ASCII is folded at spaces.
    return encoded if encoded.startswith("=?") else fold("Subject", encoded)


@dataclass(frozen=True)
class Fixed:
    """What every message of one campaign (and sender) shares, formatted once: the
    From, Reply-To and Feedback-ID fields and the MIME boundary.

    One boundary serves every message built with it: a quoted-printable body never
    contains ``=_`` (an ``=`` is always written ``=3D``), so ``=_lm_…`` cannot occur in
    any part, whatever the recipient's values are (RFC 2046 §5.1.1)."""

    from_field: str
    reply_to_field: str
    feedback_field: str
    boundary: str

    @classmethod
    def of(
        cls, *, from_name: str, from_email: str, reply_to: str = "", feedback_id: str = ""
    ) -> Fixed:
        return cls(
            from_field=" " + address(from_name, from_email),
            reply_to_field=" " + header_text(reply_to) if reply_to else "",
            feedback_field=" " + header_text(feedback_id) if feedback_id else "",
            boundary=new_boundary(),
        )

    @property
    def content_type(self) -> str:
        return f' multipart/alternative; boundary="{self.boundary}"'


def build_parts(envelope: Envelope) -> Built:
    """The complete message as :class:`Built`: a multipart/alternative of text and HTML."""
    fixed = Fixed.of(
        from_name=envelope.from_name,
        from_email=envelope.from_email,
        reply_to=envelope.reply_to,
        feedback_id=envelope.feedback_id,
    )
    return build_with(
        fixed,
        to_email=envelope.to_email,
        subject=envelope.subject,
        html=envelope.html,
        text=envelope.text,
        message_id=envelope.message_id,
        list_unsubscribe=envelope.list_unsubscribe,
        date=envelope.date,
    )


def build_with(
    fixed: Fixed,
    *,
    to_email: str,
    subject: str,
    html: str,
    text: str,
    message_id: str,
    list_unsubscribe: str = "",
    date: datetime | None = None,
) -> Built:
    """:func:`build_parts` with the campaign's shared fields formatted already (the send
    path formats them once per campaign and worker, not once per message)."""
    fields = [
        ("From", fixed.from_field),
        ("To", " " + header_text(to_email)),
        ("Subject", " " + _subject(subject)),
        ("Date", " " + (format_datetime(date) if date else _date_now())),
        ("Message-ID", " " + header_text(message_id)),
    ]
    if fixed.reply_to_field:
        fields.append(("Reply-To", fixed.reply_to_field))
    if list_unsubscribe:
        fields.append(("List-Unsubscribe", " <" + header_text(list_unsubscribe) + ">"))
        fields.append(("List-Unsubscribe-Post", " List-Unsubscribe=One-Click"))
    if fixed.feedback_field:
        fields.append(("Feedback-ID", fixed.feedback_field))
    fields.append(("MIME-Version", " 1.0"))
    fields.append(("Content-Type", fixed.content_type))
    sep = f"--{fixed.boundary}\r\n".encode()
    body = b"".join(
        (
            sep,
            _PART_HEAD % b"plain",
            quoted_printable(text),
            b"\r\n",
            sep,
            _PART_HEAD % b"html",
            quoted_printable(html),
            b"\r\n",
            f"--{fixed.boundary}--\r\n".encode(),
        )
    )
    return Built(fields, body)


def build(envelope: Envelope) -> bytes:
    """The complete message: a multipart/alternative of text and HTML (CRLF bytes)."""
    return build_parts(envelope).message()
