"""Splitting a rendered message into what stays outside and what gets encrypted.

PGP/MIME (RFC 3156) and S/MIME (RFC 8551) both encrypt a *MIME entity*: the message's
``Content-*`` header fields and its body. The transport header fields (From, To,
Date, Message-ID, List-Unsubscribe, ...) stay outside so that the message can be
routed, DKIM-signed and unsubscribed from without decrypting it.

When the outer Subject is replaced by a generic one (a PHI-bearing subject must never
travel in clear), the original Subject, From, To, Cc, Reply-To, Date and Message-ID are
copied into the encrypted entity, marked ``protected-headers="v1"`` (the LAMPS
"protected headers" convention that Thunderbird, K-9/Thunderbird for Android, Mailvelope
and others display), so the recipient still sees the real subject after decryption.

Everything works on bytes with CRLF line endings, the form SMTP sends and the form
both RFCs encrypt; the body is never re-encoded, so the decrypted body is exactly the
rendered one.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass, field
from email.header import Header
from email.message import Message

CRLF = b"\r\n"
_LINE_END = re.compile(rb"\r\n|\r|\n")
_PROTECTED = ("subject", "from", "to", "cc", "reply-to", "date", "message-id")
_DEFAULT_CONTENT_TYPE = b'Content-Type: text/plain; charset="us-ascii"\r\n'


@dataclass
class SplitMessage:
    """A message as header fields (raw, folded, CRLF-terminated) and body bytes."""

    transport: list[tuple[str, bytes]] = field(default_factory=list)
    content: list[tuple[str, bytes]] = field(default_factory=list)
    body: bytes = b""

    def get(self, name: str) -> bytes | None:
        lowered = name.lower()
        for field_name, raw in self.transport:
            if field_name == lowered:
                return raw
        return None


def canonical_bytes(message: bytes | str | Message) -> bytes:
    """The message as bytes with CRLF line endings."""
    if isinstance(message, Message):
        data = message.as_bytes()
    elif isinstance(message, str):
        data = message.encode("utf-8")
    else:
        data = bytes(message)
    return _LINE_END.sub(CRLF, data)


def split(message: bytes | str | Message) -> SplitMessage:
    """Separate transport header fields, ``Content-*`` fields and the body."""
    data = canonical_bytes(message)
    head, separator, body = data.partition(CRLF + CRLF)
    if not separator:
        # Either a message with headers and no body, or one that starts with the body.
        if head.startswith(CRLF):
            head, body = b"", head[2:]
        else:
            head, body = head, b""
    result = SplitMessage(body=body)
    current: list[bytes] = []

    def flush() -> None:
        if not current:
            return
        raw = CRLF.join(current) + CRLF
        name = current[0].split(b":", 1)[0].strip().decode("ascii", "replace").lower()
        if name.startswith("content-"):
            result.content.append((name, raw))
        elif name != "mime-version":
            result.transport.append((name, raw))
        current.clear()

    for line in head.split(CRLF) if head else []:
        if line[:1] in (b" ", b"\t") and current:
            current.append(line)
            continue
        flush()
        if b":" not in line:
            raise ValueError("The message header block is malformed (a line without a colon).")
        current.append(line)
    flush()
    return result


def inner_entity(parts: SplitMessage, *, protect_headers: bool) -> bytes:
    """The MIME entity to encrypt: content fields (+ protected copies) and the body."""
    content = [raw for _name, raw in parts.content] or [_DEFAULT_CONTENT_TYPE]
    if protect_headers:
        content = [_with_protected_parameter(raw) for raw in content]
        copies = [raw for name, raw in parts.transport if name in _PROTECTED]
        content = copies + content
    return b"".join(content) + CRLF + parts.body


def _with_protected_parameter(raw: bytes) -> bytes:
    if not raw.lower().startswith(b"content-type:"):
        return raw
    return raw[: -len(CRLF)] + b';\r\n protected-headers="v1"' + CRLF


def subject_field(subject: str) -> bytes:
    """A ``Subject:`` field, RFC 2047-encoded when not ASCII, CRLF-terminated."""
    if "\r" in subject or "\n" in subject:
        raise ValueError("The outer subject must be a single line.")
    try:
        subject.encode("ascii")
    except UnicodeEncodeError:
        encoded = Header(subject, "utf-8", header_name="Subject").encode(linesep="\r\n")
        return b"Subject: " + encoded.encode("ascii") + CRLF
    return b"Subject: " + subject.encode("ascii") + CRLF


def outer_header_block(parts: SplitMessage, *, subject: str | None) -> bytes:
    """Transport fields for the outer message; Subject replaced when ``subject`` is set."""
    fields: list[bytes] = []
    replaced = False
    for name, raw in parts.transport:
        if name == "subject" and subject is not None:
            if not replaced:
                fields.append(subject_field(subject))
                replaced = True
            continue
        fields.append(raw)
    if subject is not None and not replaced:
        fields.append(subject_field(subject))
    fields.append(b"MIME-Version: 1.0" + CRLF)
    return b"".join(fields)


def new_boundary() -> str:
    # "=_" cannot occur at the start of a base64 or armored line, and 128 random bits
    # make a collision with the payload impossible in practice.
    return "=_luxmail_" + secrets.token_hex(16)


def base64_lines(data: bytes) -> bytes:
    """Base64 with 76-character CRLF-terminated lines (RFC 2045 §6.8)."""
    encoded = base64.b64encode(data)
    return b"".join(encoded[i : i + 76] + CRLF for i in range(0, len(encoded), 76))
