"""Fixtures for the campaigns tests: real aiosmtpd sinks (plain and STARTTLS)."""

from __future__ import annotations

import datetime as dt
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.db import connection

from luxmail import roles
from luxmail.testing import free_port, require


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes


@dataclass
class Sink:
    host: str
    port: int
    messages: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    reply: str = "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.reply.startswith("250"):
            with self.lock:
                self.messages.append(
                    Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
                )
        return self.reply

    def recipients(self) -> list[str]:
        with self.lock:
            return [r for m in self.messages for r in m.rcpt_tos]


@pytest.fixture
def postgres(db: Any) -> None:
    require(connection.vendor == "postgresql", "needs PostgreSQL on 127.0.0.1:5432")


@pytest.fixture
def admin(make_user: Any) -> Any:
    return make_user(roles.ADMIN)


@pytest.fixture
def sink(settings: Any) -> Iterator[Sink]:
    """A plain SMTP sink, and the relay settings pointing at it (security none)."""
    port = free_port()
    handler = Sink("127.0.0.1", port)
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    settings.LUXMAIL_SMTP_HOST = "127.0.0.1"
    settings.LUXMAIL_SMTP_PORT = port
    settings.LUXMAIL_SMTP_SECURITY = "none"
    settings.LUXMAIL_SMTP_USER = None
    settings.LUXMAIL_SMTP_TIMEOUT = 10
    try:
        yield handler
    finally:
        controller.stop()
        from campaigns.sending.transport import pool

        pool().close_all()


def self_signed(directory: Path, host: str = "localhost") -> tuple[Path, Path]:
    """A self-signed certificate (untrusted by any default trust store)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "cert.pem"
    key_path = directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def untrusted_tls_sink(settings: Any, tmp_path: Path) -> Iterator[Sink]:
    """A relay that requires STARTTLS and presents a self-signed certificate."""
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    port = free_port()
    handler = Sink("localhost", port)
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True
    )
    controller.start()
    settings.LUXMAIL_SMTP_HOST = "localhost"
    settings.LUXMAIL_SMTP_PORT = port
    settings.LUXMAIL_SMTP_SECURITY = "starttls"
    settings.LUXMAIL_SMTP_CA_FILE = None
    settings.LUXMAIL_SMTP_TIMEOUT = 10
    handler.cert_path = cert  # type: ignore[attr-defined]
    try:
        yield handler
    finally:
        controller.stop()
        from campaigns.sending.transport import pool

        pool().close_all()


@pytest.fixture
def broker(settings: Any) -> Any:
    """The Redis broker, emptied; tasks enqueued from the test go to real workers."""
    from luxmail.testing import owns_redis, redis_answers

    url = str(settings.CELERY_BROKER_URL)
    require(url.startswith("redis://") and redis_answers(url), "needs Redis as the Celery broker")
    import redis

    from luxmail.celery import app

    def empty() -> None:
        # Flush only the throwaway server this run started; a named Redis may hold
        # other software's data: purge this app's queue there.
        if owns_redis(url):
            redis.Redis.from_url(url).flushdb()
        else:
            app.control.purge()

    empty()
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False  # enqueue to Redis; the workers run the tasks
    yield app
    app.conf.task_always_eager = eager
    empty()
