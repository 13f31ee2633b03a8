"""Real servers and certificates for delivery tests (reusable by every campaigns test).

* :class:`TestCA` — a throw-away certificate authority made with ``cryptography``:
  server certificates (``localhost`` / ``127.0.0.1`` and any extra names) for TLS
  tests, e-mail certificates for S/MIME tests, and untrusted self-signed ones.
* :func:`smtp_server` — an aiosmtpd server on a free port, plain, with STARTTLS, or
  with implicit TLS, that records every SMTP command and every message it accepted
  (and whether TLS was active when it did).
* :func:`dns_server` — a tiny UDP DNS server (dnspython) answering from a dict, so MX,
  A and TXT lookups run for real without the network.
* :func:`https_server` — a TLS web server serving fixed paths (MTA-STS policies).

Typical use::

    ca = TestCA(tmp_path)
    with smtp_server(starttls=ca.issue_server()) as good, smtp_server() as plain:
        ...
        assert good.messages[0].tls and plain.messages == []
"""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import socketserver
import ssl
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.rrset
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from luxmail.testing import free_port

__all__ = [
    "DnsServer",
    "HttpsServer",
    "IssuedCertificate",
    "ReceivedMessage",
    "RecordingHandler",
    "SmtpServer",
    "TestCA",
    "dns_server",
    "https_server",
    "self_signed_server_certificate",
    "smtp_server",
]

_ONE_DAY = dt.timedelta(days=1)


# --- certificates ----------------------------------------------------------------------


@dataclass
class IssuedCertificate:
    certificate: x509.Certificate
    private_key: Any
    cert_path: Path
    key_path: Path

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_path, self.key_path)
        return context


def _write(
    directory: Path, stem: str, certificate: x509.Certificate, key: Any
) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    cert_path = directory / f"{stem}.crt"
    key_path = directory / f"{stem}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _san(names: Sequence[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


class TestCA:
    """A certificate authority for one test; its PEM is at :attr:`ca_file`."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory: Path, *, name: str = "LuxMail Test CA") -> None:
        self.directory = Path(directory)
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _ONE_DAY)
            .not_valid_after(now + 30 * _ONE_DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        self.directory.mkdir(parents=True, exist_ok=True)
        self.ca_file = self.directory / "test-ca.pem"
        self.ca_file.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        self._counter = 0

    def _builder(
        self, subject: x509.Name, public_key: Any, not_before: dt.datetime, not_after: dt.datetime
    ) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )

    def issue_server(
        self, names: Sequence[str] = ("localhost", "127.0.0.1"), *, stem: str | None = None
    ) -> IssuedCertificate:
        """A TLS server certificate for ``names`` (DNS names or IP addresses)."""
        self._counter += 1
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        certificate = (
            self._builder(
                x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]),
                key.public_key(),
                now - _ONE_DAY,
                now + 7 * _ONE_DAY,
            )
            .add_extension(_san(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        paths = _write(self.directory, stem or f"server{self._counter}", certificate, key)
        return IssuedCertificate(certificate, key, *paths)

    def issue_email(
        self,
        email: str,
        *,
        key: Any | None = None,
        rsa_bits: int = 2048,
        in_san: bool = True,
        in_subject: bool = False,
        key_usage: str | None = "encrypt_and_sign",
        extended_key_usage: Sequence[x509.ObjectIdentifier] | None = (
            ExtendedKeyUsageOID.EMAIL_PROTECTION,
        ),
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        ca: bool = False,
    ) -> IssuedCertificate:
        """An S/MIME certificate for ``email`` (RSA unless ``key`` is given).

        ``key_usage``: ``encrypt_and_sign`` (digitalSignature + keyEncipherment),
        ``sign_only`` (digitalSignature), or None (no KeyUsage extension).
        """
        self._counter += 1
        private_key = key or rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
        now = dt.datetime.now(dt.UTC)
        attributes = [x509.NameAttribute(NameOID.COMMON_NAME, "Test Recipient")]
        if in_subject:
            attributes.append(x509.NameAttribute(NameOID.EMAIL_ADDRESS, email))
        builder = self._builder(
            x509.Name(attributes),
            private_key.public_key(),
            not_before or now - _ONE_DAY,
            not_after or now + 365 * _ONE_DAY,
        )
        if ca:
            builder = (
                x509.CertificateBuilder()
                .subject_name(x509.Name(attributes))
                .issuer_name(self.certificate.subject)
                .public_key(private_key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(not_before or now - _ONE_DAY)
                .not_valid_after(not_after or now + 365 * _ONE_DAY)
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            )
        if in_san:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=False
            )
        if key_usage is not None:
            builder = builder.add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=key_usage == "encrypt_and_sign",
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
        if extended_key_usage is not None:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage(list(extended_key_usage)), critical=False
            )
        certificate = builder.sign(self.key, hashes.SHA256())
        paths = _write(self.directory, f"email{self._counter}", certificate, private_key)
        return IssuedCertificate(certificate, private_key, *paths)


def self_signed_server_certificate(
    directory: Path, names: Sequence[str] = ("localhost", "127.0.0.1")
) -> IssuedCertificate:
    """A server certificate that no CA vouches for (what an untrusted MX presents)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _ONE_DAY)
        .not_valid_after(now + 7 * _ONE_DAY)
        .add_extension(_san(names), critical=False)
        .sign(key, hashes.SHA256())
    )
    paths = _write(Path(directory), "self-signed", certificate, key)
    return IssuedCertificate(certificate, key, *paths)


# --- SMTP ------------------------------------------------------------------------------


@dataclass
class ReceivedMessage:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    tls: bool


@dataclass
class RecordingHandler:
    """aiosmtpd handler that accepts everything and records what it saw."""

    messages: list[ReceivedMessage] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    reject_data: str | None = None  # e.g. "451 4.3.0 try later" to simulate a failure

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        self.commands.append("EHLO")
        return responses

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        self.commands.append("MAIL")
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        self.commands.append("RCPT")
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.commands.append("DATA")
        if self.reject_data:
            return self.reject_data
        self.messages.append(
            ReceivedMessage(
                mail_from=envelope.mail_from,
                rcpt_tos=list(envelope.rcpt_tos),
                data=envelope.original_content or envelope.content,
                # STARTTLS sets session.ssl; implicit TLS shows on the transport.
                tls=session.ssl is not None
                or server.transport.get_extra_info("ssl_object") is not None,
            )
        )
        return "250 2.0.0 Accepted"


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: RecordingHandler

    @property
    def messages(self) -> list[ReceivedMessage]:
        return self.handler.messages

    @property
    def commands(self) -> list[str]:
        return self.handler.commands

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@contextmanager
def smtp_server(
    *,
    starttls: IssuedCertificate | None = None,
    implicit_tls: IssuedCertificate | None = None,
    host: str = "127.0.0.1",
    handler: RecordingHandler | None = None,
) -> Iterator[SmtpServer]:
    """Run an aiosmtpd server on a free port for the duration of the block.

    ``starttls``: offer STARTTLS with this certificate. ``implicit_tls``: speak TLS from
    the first byte (SMTPS). Neither: plain SMTP without STARTTLS.
    """
    handler = handler or RecordingHandler()
    port = free_port()
    kwargs: dict[str, Any] = {
        "hostname": host,
        "port": port,
        "data_size_limit": 50 * 1024 * 1024,
        "server_hostname": "mx.test",
        "ready_timeout": 10.0,
    }
    if starttls is not None:
        kwargs["tls_context"] = starttls.server_context()
        kwargs["require_starttls"] = False
    if implicit_tls is not None:
        kwargs["ssl_context"] = implicit_tls.server_context()
    controller = Controller(handler, **kwargs)
    controller.start()
    try:
        yield SmtpServer(host=host, port=port, handler=handler)
    finally:
        controller.stop()


# --- DNS -------------------------------------------------------------------------------


@dataclass
class DnsServer:
    host: str
    port: int
    records: dict[tuple[str, str], list[str]]

    def resolver(self) -> dns.resolver.Resolver:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [self.host]
        resolver.port = self.port
        resolver.lifetime = 3.0
        resolver.timeout = 1.0
        resolver.cache = None
        return resolver


class _DnsHandler(socketserver.BaseRequestHandler):
    records: dict[tuple[str, str], list[str]] = {}

    def handle(self) -> None:
        data, sock = self.request
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name = question.name.to_text().rstrip(".").lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        answers = self.records.get((name, rdtype))
        if answers:
            response.answer.append(
                dns.rrset.from_text_list(question.name, 60, dns.rdataclass.IN, rdtype, answers)
            )
        elif not any(known == name for known, _type in self.records):
            response.set_rcode(dns.rcode.NXDOMAIN)
        sock.sendto(response.to_wire(), self.client_address)


@contextmanager
def dns_server(records: Mapping[tuple[str, str], Sequence[str]]) -> Iterator[DnsServer]:
    """Serve ``{(name, type): [rdata, ...]}`` over UDP on 127.0.0.1.

    ``DnsServer.records`` is live: change it to change the answers.

    ``("example.test", "MX"): ["10 mx.example.test."]``; a name with no record of the
    asked type gets an empty answer (NOERROR/NODATA), an unknown name NXDOMAIN.
    """
    table = {
        (name.rstrip(".").lower(), kind.upper()): list(v) for (name, kind), v in records.items()
    }
    handler = type("DnsHandler", (_DnsHandler,), {"records": table})
    server = socketserver.ThreadingUDPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield DnsServer(host="127.0.0.1", port=server.server_address[1], records=table)
    finally:
        server.shutdown()
        server.server_close()


# --- HTTPS -----------------------------------------------------------------------------


@dataclass
class HttpsServer:
    host: str
    port: int
    requests: list[str]


@contextmanager
def https_server(
    certificate: IssuedCertificate,
    routes: Mapping[str, tuple[int, str, bytes]],
) -> Iterator[HttpsServer]:
    """Serve ``{path: (status, content_type, body)}`` over HTTPS on 127.0.0.1."""
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(f"{self.headers.get('Host', '')}{self.path}")
            status, content_type, body = routes.get(self.path, (404, "text/plain", b"not found"))
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if status in (301, 302):
                self.send_header("Location", body.decode())
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = certificate.server_context()
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield HttpsServer(host="127.0.0.1", port=server.server_address[1], requests=requests)
    finally:
        server.shutdown()
        server.server_close()
