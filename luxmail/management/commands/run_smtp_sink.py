"""A local SMTP sink for ``make run``: accepts every message, keeps each as ``.eml``.

Listens on 127.0.0.1:1025 by default and writes ``var/mail/<time>-<id>.eml``. It never
relays anything anywhere; the dev Outbox page (``/dev/outbox/``) lists what it got.

Each file is the message exactly as received, preceded by ``X-Envelope-From`` and one
``X-Envelope-To`` per recipient (like a mail server's ``Return-Path``/``Delivered-To``),
so Bcc recipients stay visible. Prepended headers leave DKIM signatures valid.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from django.conf import settings
from django.core.management.base import BaseCommand


def _header_safe(value: str) -> str:
    # Envelope addresses come from the client; never let them inject header lines.
    return value.replace("\r", " ").replace("\n", " ")


class EmlWriter:
    """aiosmtpd handler: one ``.eml`` per message, written atomically."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)

    def store(self, *, mail_from: str, rcpt_tos: list[str], content: bytes) -> Path:
        newline = b"\r\n" if b"\r\n" in content[:4096] else b"\n"
        envelope = [f"X-Envelope-From: <{_header_safe(mail_from)}>"]
        envelope += [f"X-Envelope-To: <{_header_safe(rcpt)}>" for rcpt in rcpt_tos]
        head = newline.join(line.encode("utf-8", "replace") for line in envelope) + newline
        # Microseconds first, so names sort by arrival; the random part avoids clashes.
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:12]}.eml"
        partial = self.directory / f".{name}.part"
        partial.write_bytes(head + content)
        final = self.directory / name
        partial.rename(final)
        return final

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.store(
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
            content=envelope.original_content or envelope.content,
        )
        return "250 Message accepted for delivery"


class Command(BaseCommand):
    help = "Run the local SMTP sink used by `make run` (stores every message as .eml)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=1025)
        parser.add_argument("--directory", default=None, help="default: LUXMAIL_SINK_DIR")

    def handle(self, *args: Any, **options: Any) -> None:
        directory = Path(options["directory"] or settings.LUXMAIL_SINK_DIR)
        controller = Controller(
            EmlWriter(directory),
            hostname=options["host"],
            port=options["port"],
            data_size_limit=50 * 1024 * 1024,
        )
        controller.start()
        self.stdout.write(f"SMTP sink on {options['host']}:{options['port']} -> {directory}")
        self.stdout.flush()
        try:
            asyncio.run(self._wait_for_signal())
        finally:
            controller.stop()
        self.stdout.write("SMTP sink stopped")

    async def _wait_for_signal(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
