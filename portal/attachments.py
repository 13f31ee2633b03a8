"""Checking a file a staff member attaches to a portal reply, before it is stored.

The type comes from the bytes (``filetype``'s signatures), never from the name or the
browser's Content-Type; the name must agree with it. Only types a patient can open
safely are accepted: PDF, PNG, JPEG and plain UTF-8 text. Archives (ZIP and everything
built on it, such as Office documents) are refused, so a "zip bomb" never gets
unpacked anywhere; an image whose header declares an enormous canvas (a decompression
bomb for the viewer) and a PDF with scripts or launch actions are refused too. Names
lose directories, control and format characters (NUL, bidi overrides) and excess length.

Every refusal is an :class:`AttachmentRejected` whose text is a friendly sentence that
quotes neither the file's name nor its content.
"""

from __future__ import annotations

import re
import struct
import unicodedata
from dataclasses import dataclass

import filetype

from luxmail import conf

MAX_FILES = 5
MAX_NAME_CHARS = 120
MAX_IMAGE_PIXELS = 40_000_000
# Sniffed type -> extensions a name of that type may end in (first: the one added).
ALLOWED: dict[str, tuple[str, ...]] = {
    "application/pdf": (".pdf",),
    "image/png": (".png",),
    "image/jpeg": (".jpg", ".jpeg"),
    "text/plain": (".txt",),
}
_ARCHIVES = {
    "application/zip",
    "application/gzip",
    "application/x-bzip2",
    "application/x-xz",
    "application/x-7z-compressed",
    "application/x-rar-compressed",
    "application/x-tar",
    "application/zstd",
}
# PDF features that make a reader run or open something.
_PDF_ACTIVE = re.compile(rb"/(?:JavaScript|JS|Launch|EmbeddedFile|RichMedia|XFA)\b")


# C0/C1 control characters other than tab, line feed, form feed and carriage return.
_BINARY_CONTROL = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")


class AttachmentRejected(Exception):
    """A file that may not be attached; ``str()`` is what the staff member reads."""


@dataclass(frozen=True)
class CheckedFile:
    name: str
    content_type: str
    data: bytes


def clean_name(raw: str) -> str:
    """A displayable file name: no directories, control characters or excess length."""
    name = unicodedata.normalize("NFC", raw or "")
    # Control and format characters (NUL, newlines, right-to-left overrides that make
    # "gnp.pdf" read as "fdp.png") are dropped.
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf"))
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip().rstrip(". ")
    if len(name) > MAX_NAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        ext = ext[:10] if dot else ""
        name = (stem if dot else name)[: MAX_NAME_CHARS - len(ext) - 1] + (f".{ext}" if ext else "")
    return name


def _sniff(data: bytes) -> str:
    kind = filetype.guess(data[:8192])
    if kind is not None:
        return str(kind.mime)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "application/octet-stream"
    if _BINARY_CONTROL.search(text):  # NUL and friends: not a text file
        return "application/octet-stream"
    return "text/plain"


def _png_pixels(data: bytes) -> int:
    # IHDR is the first chunk: 8-byte signature, length, "IHDR", width, height.
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise AttachmentRejected("This PNG image is damaged and cannot be attached.")
    width, height = struct.unpack(">II", data[16:24])
    return int(width) * int(height)


def _jpeg_pixels(data: bytes) -> int:
    # Walk the segments to the first start-of-frame marker (bounded by the file size).
    position = 2
    while position + 9 < len(data):
        if data[position] != 0xFF:
            break
        marker = data[position + 1]
        length = struct.unpack(">H", data[position + 2 : position + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE):
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return int(width) * int(height)
        if length < 2:
            break
        position += 2 + length
    raise AttachmentRejected("This JPEG image is damaged and cannot be attached.")


def attachment_check(*, name: str, data: bytes) -> CheckedFile:
    """The file as it will be stored, or :class:`AttachmentRejected` saying why not."""
    limit = conf.portal_attachment_max_bytes()
    if not data:
        raise AttachmentRejected("An attached file is empty.")
    if len(data) > limit:
        raise AttachmentRejected(
            f"An attached file is too large ({len(data):,} bytes); the limit is {limit:,} bytes."
        )
    content_type = _sniff(data)
    if content_type in _ARCHIVES:
        raise AttachmentRejected(
            "Archives (ZIP and similar, Office documents included) cannot be attached; "
            "attach a PDF instead."
        )
    if content_type not in ALLOWED:
        raise AttachmentRejected(
            "An attached file is not a PDF, PNG, JPEG or plain-text file (judged by its "
            "content, not its name)."
        )
    cleaned = clean_name(name)
    stem, dot, ext = cleaned.rpartition(".")
    extensions = ALLOWED[content_type]
    if not dot:
        cleaned = (cleaned or "attachment") + extensions[0]
    elif f".{ext.lower()}" not in extensions:
        raise AttachmentRejected(
            f"An attached file's name ends in “.{ext[:10]}” but its content is "
            f"{content_type}; rename it or attach the right file."
        )
    elif not stem:
        cleaned = "attachment" + extensions[0]
    if content_type == "image/png" and _png_pixels(data) > MAX_IMAGE_PIXELS:
        raise AttachmentRejected("An attached image is too large in pixels to open safely.")
    if content_type == "image/jpeg" and _jpeg_pixels(data) > MAX_IMAGE_PIXELS:
        raise AttachmentRejected("An attached image is too large in pixels to open safely.")
    if content_type == "application/pdf" and _PDF_ACTIVE.search(data):
        raise AttachmentRejected(
            "An attached PDF contains scripts, embedded files or launch actions; "
            "print it to a plain PDF and attach that."
        )
    return CheckedFile(name=cleaned, content_type=content_type, data=data)
