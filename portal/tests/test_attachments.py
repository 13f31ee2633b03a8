"""Hostile files a staff member might attach to a portal answer (portal/attachments.py)
and the ClamAV client (portal/antivirus.py) against a stand-in clamd on a Unix socket."""

from __future__ import annotations

import io
import os
import socket
import struct
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Iterator

import pytest

from portal import antivirus
from portal.attachments import AttachmentRejected, attachment_check, clean_name

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def png(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(header))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
        + b"\x00\x00\x00\x00IEND\xaeB`\x82"
    )


def test_a_plain_pdf_png_and_text_pass_with_types_from_their_bytes():
    assert attachment_check(name="results.pdf", data=PDF).content_type == "application/pdf"
    assert attachment_check(name="scan.png", data=png(10, 10)).content_type == "image/png"
    text = attachment_check(name="notes.txt", data="Café hours\n".encode())
    assert text.content_type == "text/plain" and text.name == "notes.txt"
    # No extension: the sniffed type's is added.
    assert attachment_check(name="letter", data=PDF).name == "letter.pdf"


def test_oversize_is_refused(settings):
    settings.LUXMAIL_PORTAL_ATTACHMENT_MAX_BYTES = 1000
    with pytest.raises(AttachmentRejected, match="too large"):
        attachment_check(name="big.pdf", data=PDF + b"0" * 1000)
    with pytest.raises(AttachmentRejected, match="empty"):
        attachment_check(name="empty.pdf", data=b"")


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("invoice.pdf", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 200),
        ("photo.jpg", b"\x7fELF\x02\x01\x01" + b"\x00" * 200),
        ("page.pdf", b"<html><script>alert(1)</script></html>\x00\x01"),
        ("notes.txt", b"plain start\x00\x01\x02binary tail"),
    ],
)
def test_a_wrong_type_disguised_by_its_extension_is_refused(name, data):
    with pytest.raises(AttachmentRejected, match="not a PDF, PNG, JPEG or plain-text"):
        attachment_check(name=name, data=data)


def test_a_real_type_under_another_extension_is_refused():
    with pytest.raises(AttachmentRejected, match=r"ends in “\.pdf”"):
        attachment_check(name="report.pdf", data=png(4, 4))


def test_zip_bombs_and_office_files_are_refused_without_unpacking():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        # 200 MB of zeros compress to ~200 KB; nothing may inflate them.
        archive.writestr("zeros.bin", b"\x00" * (200 * 1024 * 1024))
    bomb = buffer.getvalue()
    assert len(bomb) < 1024 * 1024
    for name in ("results.pdf", "results.zip", "letter.docx"):
        with pytest.raises(AttachmentRejected, match="Archives"):
            attachment_check(name=name, data=bomb)


def test_an_image_declaring_a_huge_canvas_is_refused():
    with pytest.raises(AttachmentRejected, match="too large in pixels"):
        attachment_check(name="bomb.png", data=png(100_000, 100_000))


def test_a_pdf_with_scripts_is_refused():
    with pytest.raises(AttachmentRejected, match="scripts"):
        attachment_check(name="form.pdf", data=PDF + b"<< /S /JavaScript /JS (app.alert(1)) >>")


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("lab\x00results.pdf", "labresults.pdf"),
        ("../../etc/passwd.pdf", "passwd.pdf"),
        ("C:\\Users\\x\\scan.pdf", "scan.pdf"),
        ("\x00\x00\x00", ""),
        ("a" * 500 + ".pdf", "a" * 116 + ".pdf"),
        ("report\u202egnp.pdf", "reportgnp.pdf"),
    ],
)
def test_names_lose_nul_control_characters_directories_and_length(raw, cleaned):
    assert clean_name(raw) == cleaned


def test_a_name_of_only_nul_bytes_still_gets_a_usable_name():
    assert attachment_check(name="\x00\x00.pdf", data=PDF).name == "attachment.pdf"
    assert attachment_check(name="\x00\x00", data=PDF).name == "attachment.pdf"


# --- ClamAV ----------------------------------------------------------------------------

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


@pytest.fixture
def clamd() -> Iterator[str]:
    """A stand-in clamd speaking zINSTREAM: FOUND for the EICAR test string, else OK."""
    path = os.path.join(tempfile.mkdtemp(), "clamd.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(4)
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                data = b""
                while not data.endswith(b"\0\0\0\0"):
                    data += conn.recv(65536)
                found = EICAR in data
                conn.sendall(b"stream: Eicar-Signature FOUND\0" if found else b"stream: OK\0")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield path
    stop.set()
    thread.join()
    server.close()


def test_clamav_passes_clean_files_and_refuses_eicar(clamd, settings):
    settings.LUXMAIL_CLAMAV_ADDRESS = clamd
    assert antivirus.scan(PDF).scanned is True
    with pytest.raises(antivirus.ScanRefused, match="Eicar-Signature"):
        antivirus.scan(EICAR)


def test_without_a_reachable_clamd_files_are_marked_unscanned(settings, tmp_path):
    settings.LUXMAIL_CLAMAV_ADDRESS = str(tmp_path / "missing.sock")
    assert antivirus.scan(PDF).scanned is False
    settings.LUXMAIL_CLAMAV_ADDRESS = ""
    assert antivirus.scan(PDF).scanned is False
