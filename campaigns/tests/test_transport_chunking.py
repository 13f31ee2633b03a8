"""``Connection.send_many`` over RFC 3030 CHUNKING (BDAT): a run of messages written
before any reply is read, against a small real SMTP server (aiosmtpd has no BDAT) —
refusals in the middle of a run, a server whose state after a refusal makes the next
MAIL fail "out of sequence", a session already closed, and one that breaks with bodies
on the wire (those are "ambiguous", never resent)."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from campaigns.sending.transport import Connection, RelayConfig
from luxmail.testing import free_port

pytestmark = pytest.mark.smtp


@dataclass
class ChunkingServer:
    """Accepts mail by BDAT (and DATA), except: RCPT ``refused@`` gets 550, the body of
    ``later@`` gets 451; ``sticky``: after a body refused for want of recipients,
    every command but RSET gets 503 (bad sequence) until RSET; ``drop_after``: the
    session closes, without replying, once that many messages were accepted in it;
    ``drop_at_once``: closes right after EHLO."""

    port: int = 0
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    sticky: bool = False
    drop_after: int | None = None
    drop_at_once: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(state: ChunkingServer) -> type[socketserver.StreamRequestHandler]:
    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            out = self.wfile
            out.write(b"220 chunking test server\r\n")
            sender: str | None = None
            recipients: list[str] = []
            accepted = 0
            stuck = False
            while True:
                line = self.rfile.readline()
                if not line:
                    return
                words = line.decode().strip().split()
                verb = words[0].upper() if words else ""
                with state.lock:
                    state.commands.append(verb)
                if stuck and verb not in ("RSET", "QUIT"):
                    if verb == "BDAT":
                        self.rfile.read(int(words[1]))
                    out.write(b"503 5.5.1 send RSET first\r\n")
                    continue
                if verb == "EHLO":
                    out.write(b"250-test\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 8BITMIME\r\n")
                    if state.drop_at_once:
                        return
                elif verb == "MAIL":
                    if sender is not None:
                        out.write(b"503 5.5.1 nested MAIL command\r\n")
                        continue
                    sender = line.decode().split(":", 1)[1].strip()
                    out.write(b"250 OK\r\n")
                elif verb == "RCPT":
                    if sender is None:
                        out.write(b"503 5.5.1 need MAIL\r\n")
                        continue
                    address = line.decode().split(":", 1)[1].strip().strip("<>")
                    if address.startswith("refused@"):
                        out.write(b"550 5.1.1 no such user\r\n")
                    else:
                        recipients.append(address)
                        out.write(b"250 OK\r\n")
                elif verb in ("BDAT", "DATA"):
                    if verb == "BDAT":
                        body = self.rfile.read(int(words[1]))
                    elif sender is None or not recipients:
                        out.write(b"503 5.5.1 need RCPT\r\n")
                        continue
                    else:
                        out.write(b"354 go ahead\r\n")
                        out.flush()
                        lines = []
                        while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                            lines.append(chunk[1:] if chunk.startswith(b".") else chunk)
                        body = b"".join(lines)
                    if sender is None or not recipients:
                        out.write(b"554 5.5.1 no valid recipients\r\n")
                        stuck = state.sticky
                        sender, recipients = None, []
                        continue
                    if recipients[0].startswith("later@"):
                        out.write(b"451 4.3.0 try later\r\n")
                    else:
                        with state.lock:
                            state.messages.append((recipients[0], body))
                        accepted += 1
                        if state.drop_after is not None and accepted >= state.drop_after:
                            # Close our side without replying, and take whatever is
                            # still coming (no reset that would race the replies).
                            self.connection.shutdown(socket.SHUT_WR)
                            self.connection.settimeout(5)
                            with contextlib.suppress(OSError):
                                while self.connection.recv(65536):
                                    pass
                            return
                        out.write(b"250 2.0.0 queued\r\n")
                    sender, recipients = None, []
                elif verb == "RSET":
                    sender, recipients, stuck = None, [], False
                    out.write(b"250 OK\r\n")
                elif verb == "QUIT":
                    out.write(b"221 bye\r\n")
                    return
                else:
                    out.write(b"250 OK\r\n")

    return Handler


@pytest.fixture
def chunking_server() -> Iterator[ChunkingServer]:
    state = ChunkingServer(port=free_port())
    server = socketserver.ThreadingTCPServer(("127.0.0.1", state.port), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def _data(n: int) -> bytes:
    # BDAT carries the body as it is: a leading dot needs no stuffing.
    return f"Subject: m{n}\r\n\r\n.line {n}\r\nend {n}\r\n".encode()


def _connect(port: int) -> Connection:
    connection = Connection(RelayConfig("127.0.0.1", port, "none"))
    assert connection.chunking
    return connection


def test_a_run_goes_out_in_one_stream_with_refusals_in_between(chunking_server) -> None:
    connection = _connect(chunking_server.port)
    recipients = ["a@x.test", "refused@x.test", "b@x.test", "later@x.test", "c@x.test"]
    items = [("bounces@clinic.example", r, _data(i)) for i, r in enumerate(recipients)]

    outcomes = connection.send_many(items)

    assert [o.kind for o in outcomes] == ["sent", "permanent", "sent", "transient", "sent"]
    assert outcomes[1].stage == "RCPT" and outcomes[1].code == 550
    assert outcomes[3].stage == "DATA" and outcomes[3].code == 451
    assert chunking_server.messages == [
        ("a@x.test", _data(0)),
        ("b@x.test", _data(2)),
        ("c@x.test", _data(4)),
    ]
    assert "DATA" not in chunking_server.commands
    assert not connection.broken
    assert [o.kind for o in connection.send_many(items[:1])] == ["sent"]
    connection.close()


def test_a_refusal_that_leaves_state_behind_is_resent_carefully(chunking_server) -> None:
    chunking_server.sticky = True
    connection = _connect(chunking_server.port)
    recipients = ["a@x.test", "refused@x.test", "b@x.test", "c@x.test"]
    items = [("bounces@clinic.example", r, _data(i)) for i, r in enumerate(recipients)]

    outcomes = connection.send_many(items)

    # b's and c's commands met the state the refusal left (503): not their outcome —
    # after RSET they went again, one by one (DATA), and were accepted once each.
    assert [o.kind for o in outcomes] == ["sent", "permanent", "sent", "sent"]
    assert [r for r, _ in chunking_server.messages] == ["a@x.test", "b@x.test", "c@x.test"]
    assert not connection.broken
    connection.close()


def test_a_session_closed_before_the_run_sends_nothing(chunking_server) -> None:
    connection = _connect(chunking_server.port)
    chunking_server.drop_at_once = True  # the next session is closed after EHLO
    stale = _connect(chunking_server.port)
    items = [("bounces@clinic.example", f"p{i}@x.test", _data(i)) for i in range(3)]

    outcomes = stale.send_many(items)

    # No body left before the server answered the first MAIL: "transient", and the
    # others get no outcome (the caller sends them over a new session).
    assert [o.kind for o in outcomes] == ["transient"]
    assert stale.broken
    assert chunking_server.messages == []
    connection.close()


def test_a_session_broken_with_bodies_on_the_wire_is_ambiguous(chunking_server) -> None:
    chunking_server.drop_after = 2
    connection = _connect(chunking_server.port)
    items = [("bounces@clinic.example", f"p{i}@x.test", _data(i)) for i in range(5)]

    outcomes = connection.send_many(items)

    # The first was answered; the second was taken and the session closed before the
    # reply; the rest were written too. None of them may be sent again automatically.
    assert [o.kind for o in outcomes] == [
        "sent",
        "ambiguous",
        "ambiguous",
        "ambiguous",
        "ambiguous",
    ]
    assert connection.broken
    assert [r for r, _ in chunking_server.messages] == ["p0@x.test", "p1@x.test"]
    connection.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_overlapped_batch_over_bdat_sends_each_message_at_most_once(
    postgres, chunking_server, settings, admin
) -> None:
    # A committed batch (no transaction around it): the chunk loop is overlapped, chunk
    # N on the wire thread while N+1 is composed. The relay drops the session with the
    # second chunk's bodies on the wire: those are "unknown" and never go again; the
    # rest are sent over a new session, each once.
    from collections import Counter
    from unittest import mock

    from campaigns import services
    from campaigns.models import Message, MessageState
    from campaigns.sending import delivery
    from campaigns.sending.transport import pool
    from campaigns.tests.factories import make_campaign, make_contacts

    settings.LUXMAIL_SMTP_HOST = "127.0.0.1"
    settings.LUXMAIL_SMTP_PORT = chunking_server.port
    settings.LUXMAIL_SMTP_SECURITY = "none"
    settings.LUXMAIL_SMTP_USER = None
    settings.LUXMAIL_SEND_CHUNK = 4
    chunking_server.drop_after = 6  # in the second chunk, per session
    campaign = make_campaign(contact_ids=make_contacts(12), actor=admin)
    with mock.patch("campaigns.services.campaigns._enqueue_chains"):  # this test sends
        services.campaign_start(campaign=campaign, actor=admin)
    try:
        report = delivery.send_batch(campaign_id=campaign.pk, limit=50)
    finally:
        pool().close_all()

    states = Counter(Message.objects.filter(campaign=campaign).values_list("state", flat=True))
    received = Counter(r for r, _ in chunking_server.messages)
    assert max(received.values()) == 1, f"delivered twice: {received.most_common(2)}"
    # Chunk 2: the 5th answered, the 6th taken without a reply, the 7th and 8th
    # written: three unknown; chunk 3 over a new session.
    assert states == {MessageState.SENT: 9, MessageState.UNKNOWN: 3}
    assert report.sent == 9 and report.unknown == 3
    assert len(received) == 10  # one of the unknown ones did arrive
