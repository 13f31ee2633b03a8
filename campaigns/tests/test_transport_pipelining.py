"""``Connection.send_many``: messages pipelined across transactions (RFC 2920) against
a real aiosmtpd server that advertises PIPELINING, with refusals and a dropped session
in the middle of a run."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from campaigns.sending.transport import Connection, RelayConfig
from luxmail.testing import free_port

pytestmark = pytest.mark.smtp


@dataclass
class PipeliningSink:
    """Accepts mail, except: RCPT ``refused@`` gets 550, DATA for ``later@`` gets 451,
    and after ``drop_after`` accepted messages the server closes the session."""

    messages: list[tuple[str, bytes]] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    drop_after: int | None = None

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address.startswith("refused@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if envelope.rcpt_tos[0].startswith("later@"):
            return "451 4.3.0 try later"
        self.messages.append((envelope.rcpt_tos[0], envelope.original_content))
        if self.drop_after is not None and len(self.messages) >= self.drop_after:
            server.transport.close()
        return "250 2.0.0 queued"


@pytest.fixture
def pipelining_sink() -> Iterator[tuple[PipeliningSink, int]]:
    handler = PipeliningSink()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def _data(n: int) -> bytes:
    # A leading dot on a body line must arrive intact (dot-stuffing), as must the end.
    return f"Subject: m{n}\r\n\r\n.line {n}\r\nend {n}\r\n".encode()


def test_runs_of_messages_with_refusals_in_between(pipelining_sink) -> None:
    sink, port = pipelining_sink
    connection = Connection(RelayConfig("127.0.0.1", port, "none"))
    assert connection.pipelining
    recipients = ["a@x.test", "refused@x.test", "b@x.test", "later@x.test", "c@x.test"]
    items = [("bounces@clinic.example", r, _data(i)) for i, r in enumerate(recipients)]

    outcomes = connection.send_many(items)

    assert [o.kind for o in outcomes] == ["sent", "permanent", "sent", "transient", "sent"]
    assert outcomes[1].stage == "RCPT" and outcomes[1].code == 550
    assert outcomes[3].stage == "DATA" and outcomes[3].code == 451
    assert [r for r, _ in sink.messages] == ["a@x.test", "b@x.test", "c@x.test"]
    for (_, data), n in zip(sink.messages, (0, 2, 4), strict=True):
        assert data.replace(b"\r\n", b"\n") == _data(n).replace(b"\r\n", b"\n")
    assert not connection.broken
    # The session stays usable for the next run.
    assert [o.kind for o in connection.send_many(items[:1])] == ["sent"]
    connection.close()


def test_a_dropped_session_ends_the_run_without_guessing(pipelining_sink) -> None:
    sink, port = pipelining_sink
    sink.drop_after = 2
    connection = Connection(RelayConfig("127.0.0.1", port, "none"))
    items = [("bounces@clinic.example", f"p{i}@x.test", _data(i)) for i in range(5)]

    outcomes = connection.send_many(items)

    # The server took the second message and closed the session before replying: the
    # second is "ambiguous" (never retried), and the run stops there — the messages
    # after it get no outcome and go over a new session; none of their bodies went out.
    assert [o.kind for o in outcomes] == ["sent", "ambiguous"]
    assert connection.broken
    assert [r for r, _ in sink.messages] == ["p0@x.test", "p1@x.test"]
