"""A minimal, fast SMTP sink for benchmarks: accepts everything, counts, keeps nothing.

aiosmtpd parses every command and message in Python and becomes the bottleneck on a
2-core machine; this asyncio protocol only splits lines, answers, and looks for the
end-of-data marker (or counts BDAT octets). It advertises PIPELINING (RFC 2920) and
CHUNKING (RFC 3030, like Postfix; ``--no-chunking`` leaves it out, for a DATA-only
relay). Both the LuxMail pipeline and the naive baseline send into the same sink.

    python bench/smtp_sink.py --port 2526 --count-file var/bench-sink.count
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from pathlib import Path

RECEIVED = 0


class SinkProtocol(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buffer = b""
        self.in_data = False
        self.skip = 0  # BDAT octets still to discard
        self.last = False  # the BDAT being read is the LAST one
        transport.write(b"220 bench-sink ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        global RECEIVED
        buffer = self.buffer + data if self.buffer else data
        out: list[bytes] = []
        position = 0
        while True:
            if self.skip:
                take = min(self.skip, len(buffer) - position)
                self.skip -= take
                position += take
                if self.skip:
                    break
                if self.last:
                    RECEIVED += 1
                out.append(b"250 2.0.0 queued\r\n")
                continue
            if self.in_data:
                end = buffer.find(b"\r\n.\r\n", position)
                if end < 0:
                    # Keep only a tail long enough to hold a split marker.
                    position = max(position, len(buffer) - 4)
                    break
                position = end + 5
                self.in_data = False
                RECEIVED += 1
                out.append(b"250 2.0.0 queued\r\n")
                continue
            line_end = buffer.find(b"\r\n", position)
            if line_end < 0:
                break
            verb = buffer[position : position + 4].upper()
            if verb == b"BDAT":
                words = buffer[position:line_end].split()
                self.skip = int(words[1])
                self.last = len(words) > 2 and words[2].upper() == b"LAST"
                position = line_end + 2
                if not self.skip:  # "BDAT 0 LAST"
                    if self.last:
                        RECEIVED += 1
                    out.append(b"250 2.0.0 queued\r\n")
                continue
            position = line_end + 2
            if verb == b"EHLO":
                out.append(EHLO_NO_CHUNKING if NO_CHUNKING else EHLO)
            elif verb == b"HELO":
                out.append(b"250 bench-sink\r\n")
            elif verb == b"DATA":
                self.in_data = True
                out.append(b"354 go ahead\r\n")
            elif verb == b"QUIT":
                out.append(b"221 bye\r\n")
                self.transport.write(b"".join(out))
                self.transport.close()
                return
            else:  # MAIL, RCPT, RSET, NOOP
                out.append(b"250 OK\r\n")
        self.buffer = buffer[position:]
        if out:
            self.transport.write(b"".join(out))


NO_CHUNKING = False
EHLO = b"250-bench-sink\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-8BITMIME\r\n250 SIZE 52428800\r\n"
EHLO_NO_CHUNKING = EHLO.replace(b"250-CHUNKING\r\n", b"")


async def serve(host: str, port: int, count_file: Path | None) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(SinkProtocol, host, port, backlog=256)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        while not stop.is_set():
            if count_file is not None:
                count_file.write_text(str(RECEIVED))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.25)
    if count_file is not None:
        count_file.write_text(str(RECEIVED))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2526)
    parser.add_argument("--count-file", type=Path)
    parser.add_argument("--no-chunking", action="store_true", help="do not offer BDAT")
    args = parser.parse_args()
    global NO_CHUNKING
    NO_CHUNKING = args.no_chunking
    asyncio.run(serve(args.host, args.port, args.count_file))


if __name__ == "__main__":
    main()
