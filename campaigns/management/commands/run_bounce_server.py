"""Receive DSNs and ARF complaints on the VERP return path (``bounces+<token>@<domain>``).

An aiosmtpd server: RCPT is accepted only for ``bounces+…`` addresses, DATA is
handled by ``campaigns.sending.bounces.bounce_process`` in a worker thread (the ORM is
synchronous). Mail is never refused: what the parser cannot read is kept encrypted for
reprocessing. Only bytes that are not mail at all are refused with 554 (so the sending
MTA does not keep retrying them); a database failure answers 451 (try again later).
Point the MX of the bounce domain (or the relay's bounce routing) at this server.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.controller import Controller
from django.core.management.base import BaseCommand
from django.db import DatabaseError, close_old_connections

from campaigns.sending import bounces

logger = logging.getLogger(__name__)


def _process(raw: bytes, recipients: list[str]) -> bounces.Outcome:
    close_old_connections()
    try:
        return bounces.bounce_process(raw=raw, source="smtp", envelope_recipients=recipients)
    finally:
        close_old_connections()


class BounceHandler:
    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if not address.lower().startswith("bounces+"):
            return "550 5.1.1 This server accepts only bounce reports"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        try:
            outcome = await asyncio.to_thread(_process, raw, list(envelope.rcpt_tos))
        except bounces.BounceError:
            return "554 5.6.0 Not an e-mail message"
        except DatabaseError:
            logger.exception("bounce report could not be stored")
            return "451 4.3.0 Temporary failure, try again later"
        logger.info(
            "bounce report (%s): %d events, %d suppressed, %d unmatched, %d unparsed, "
            "%d sender-health",
            outcome.kind,
            outcome.events,
            outcome.suppressed,
            outcome.unmatched,
            outcome.unparsed,
            outcome.sender_events,
        )
        return "250 Report accepted"


class Command(BaseCommand):
    help = "Receive bounce (DSN) and complaint (ARF) reports on the VERP return path."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=2525)

    def handle(self, *args: Any, **options: Any) -> None:
        controller = Controller(
            BounceHandler(),
            hostname=options["host"],
            port=options["port"],
            data_size_limit=bounces.MAX_REPORT_BYTES,
        )
        controller.start()
        self.stdout.write(f"Bounce server on {options['host']}:{options['port']}")
        try:
            asyncio.run(asyncio.Event().wait())
        except KeyboardInterrupt:
            pass
        finally:
            controller.stop()
