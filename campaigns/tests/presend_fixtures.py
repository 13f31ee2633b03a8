"""Real local servers for the pre-send check's tests: a tiny authoritative DNS server
(dnspython messages over UDP, in a thread) and an HTTP server with good and broken
pages. No mocks: the check's resolver and link probe talk to these over sockets."""

from __future__ import annotations

import http.server
import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from campaigns import services
from campaigns.models import SenderIdentity
from luxmail.actors import Actor


def _txt(value: str) -> str:
    """A TXT rdata text: long values split into 200-byte quoted strings."""
    return " ".join(f'"{value[i : i + 200]}"' for i in range(0, max(len(value), 1), 200))


class DnsServer:
    """Answers TXT queries from ``records`` (name → strings); other names: NXDOMAIN."""

    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.queries: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            query = dns.message.from_wire(data)
            response = dns.message.make_response(query)
            question = query.question[0]
            name = question.name.to_text(omit_final_dot=True).lower()
            self.queries.append(name)
            values = self.records.get(name)
            if values is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
            elif question.rdtype == dns.rdatatype.TXT and values:
                response.answer.append(
                    dns.rrset.from_text_list(
                        question.name, 60, "IN", "TXT", [_txt(v) for v in values]
                    )
                )
            self.sock.sendto(response.to_wire(), peer)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


class _Pages(http.server.BaseHTTPRequestHandler):
    def _answer(self, body: bool) -> None:
        if self.path.startswith("/ok"):
            self.send_response(200)
        elif self.path.startswith("/moved"):
            self.send_response(302)
            self.send_header("Location", "/ok")
        elif self.path.startswith("/head-not-allowed") and self.command == "HEAD":
            self.send_response(405)
        elif self.path.startswith("/head-not-allowed"):
            self.send_response(200)
        else:
            self.send_response(404)
        self.send_header("Content-Length", "2")
        self.end_headers()
        if body:
            self.wfile.write(b"ok")

    def do_HEAD(self) -> None:
        self._answer(False)

    def do_GET(self) -> None:
        self._answer(True)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet test output


@pytest.fixture
def dns_server(settings: Any) -> Iterator[DnsServer]:
    server = DnsServer()
    settings.LUXMAIL_DNS_RESOLVER = f"127.0.0.1:{server.port}"
    yield server
    server.stop()


@pytest.fixture
def web_server(settings: Any) -> Iterator[str]:
    """Base URL of a local HTTP server (/ok 200, /moved 302 → /ok, anything else 404);
    link checking on, private addresses allowed (the server is on 127.0.0.1)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.LUXMAIL_LINK_CHECK = "http-any"
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def authenticated_sender(
    dns: DnsServer, actor: Actor, *, dmarc: bool = True, spf: bool = True
) -> SenderIdentity:
    """A sender on a fresh domain whose SPF, DKIM (its own key) and DMARC are published
    (DMARC and SPF optional)."""
    domain = f"clinic-{uuid.uuid4().hex[:8]}.test"
    sender = services.sender_create(
        name=f"Clinic {domain}", from_name="Springfield Clinic", from_email=f"news@{domain}",
        actor=actor,
    )  # fmt: skip
    dns.records[domain] = ["v=spf1 ip4:192.0.2.10 -all"] if spf else []
    dns.records[f"{sender.dkim_selector}._domainkey.{domain}"] = [
        f"v=DKIM1; k=rsa; p={sender.dkim_public_key}"
    ]
    if dmarc:
        dns.records[f"_dmarc.{domain}"] = ["v=DMARC1; p=quarantine; rua=mailto:d@" + domain]
    return sender
