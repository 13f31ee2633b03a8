"""Scanning attachments with ClamAV's daemon (clamd), when one is reachable.

Speaks clamd's ``zINSTREAM`` command over the Unix socket or TCP address of
``LUXMAIL_CLAMAV_ADDRESS`` (docs/operations.md): the bytes go in chunks, clamd answers
``stream: OK`` or ``stream: <signature> FOUND``. When no clamd answers, the file is
stored as *not scanned* and the UI says so next to it; a file clamd flags is refused.
A clamd that answers but fails mid-scan (timeout, error reply) refuses the file too:
only "no scanner at all" is treated as "not scanned".
"""

from __future__ import annotations

import logging
import socket
import struct
from dataclasses import dataclass

from luxmail import conf

logger = logging.getLogger(__name__)
CHUNK = 64 * 1024


class ScanRefused(Exception):
    """clamd found a virus or could not finish; ``str()`` is for the staff member."""


@dataclass(frozen=True)
class ScanResult:
    scanned: bool  # False: no clamd was reachable


def _connect(address: str, timeout: float) -> socket.socket:
    if address.startswith("/"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(address)
        except OSError:
            sock.close()
            raise
        return sock
    host, _, port = address.rpartition(":")
    return socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout)


def scan(data: bytes) -> ScanResult:
    """Scan ``data``; raises :class:`ScanRefused` if clamd flags it or breaks off."""
    address = conf.clamav_address()
    if not address:
        return ScanResult(scanned=False)
    timeout = float(conf.clamav_timeout_seconds())
    try:
        sock = _connect(address, timeout)
    except (OSError, ValueError):
        return ScanResult(scanned=False)
    try:
        with sock:
            sock.sendall(b"zINSTREAM\0")
            for start in range(0, len(data), CHUNK):
                chunk = data[start : start + CHUNK]
                sock.sendall(struct.pack("!L", len(chunk)) + chunk)
            sock.sendall(struct.pack("!L", 0))
            answer = b""
            while not answer.endswith(b"\0") and len(answer) < 4096:
                part = sock.recv(4096)
                if not part:
                    break
                answer += part
    except OSError as error:
        logger.warning("clamd scan failed: %s", type(error).__name__)
        raise ScanRefused(
            "The virus scanner did not finish checking a file; try again in a minute."
        ) from None
    reply = answer.rstrip(b"\0").decode("ascii", "replace").strip()
    if reply.endswith(" OK"):
        return ScanResult(scanned=True)
    if reply.endswith(" FOUND"):
        signature = reply.removeprefix("stream:").removesuffix("FOUND").strip()[:80]
        logger.warning("clamd refused an attachment: %s", signature)
        raise ScanRefused(f"The virus scanner refused an attached file ({signature}).")
    logger.warning("clamd answered unexpectedly (%d bytes)", len(reply))
    raise ScanRefused("The virus scanner could not check a file; try again in a minute.")
