"""SMTP relay transport: verified TLS, pooled persistent connections, classified replies.

* **TLS is never downgraded.** ``starttls`` requires the server to offer STARTTLS and
  to present a certificate that ``ssl.create_default_context()`` verifies for the
  configured host name; ``implicit`` wraps the socket from the first byte. A missing
  STARTTLS, a failed handshake or an untrusted certificate raises
  :class:`TlsRefused`: the message is deferred and nothing is sent in plaintext.
  ``none`` (plaintext) exists for the local dev sink only and settings refuse it in
  production.
* **Pooled connections.** Each worker process keeps its open connections
  (:func:`pool`) and reuses them across batches; a connection that fails is dropped.
* **Outcomes.** 2xx → ``sent``; 4xx, timeouts and connection errors *before the end of
  DATA* → ``transient`` (deferred, retried with backoff); 5xx → ``permanent``
  (failed). An error *after* the message body was fully transmitted and before the
  server's reply was read is ``ambiguous``: the server may have accepted it, so the
  pipeline marks the message ``unknown`` instead of retrying (never twice).
* **PIPELINING** (RFC 2920) is used when the server offers it: MAIL, RCPT and DATA go
  in one write, and :meth:`Connection.send_many` sends each body together with the next
  message's MAIL, RCPT and DATA, so a run of messages costs one round trip each.
* **CHUNKING** (RFC 3030 BDAT) with PIPELINING: the body needs no 354 first, so a run
  of messages goes out as one stream of MAIL, RCPT, ``BDAT n LAST`` + body and its
  replies are read afterwards — one round trip for the run (plus one to check that the
  session is alive before any body leaves). A message whose body went out and whose
  reply did not come back is ``ambiguous``, like with DATA; on a broken session that
  is every message of the run not yet answered (a chunk, ``LUXMAIL_SEND_CHUNK``).
"""

from __future__ import annotations

import hashlib
import logging
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from django.conf import settings
from django.utils import timezone

from campaigns.secure.errors import TlsRefused, TransportError
from campaigns.secure.tls import verifying_context as shared
from luxmail import conf
from luxmail.logging import redact

logger = logging.getLogger(__name__)

Kind = Literal["sent", "transient", "permanent", "ambiguous"]
Security = Literal["starttls", "implicit", "none"]


@dataclass(frozen=True)
class RelayConfig:
    host: str
    port: int
    security: Security
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    timeout: float = 30.0
    helo: str | None = None

    @classmethod
    def from_settings(cls) -> RelayConfig:
        security: Security
        if settings.LUXMAIL_SMTP_SECURITY == "starttls":
            security = "starttls"
        elif settings.LUXMAIL_SMTP_SECURITY == "implicit":
            security = "implicit"
        elif settings.LUXMAIL_SMTP_SECURITY == "none":
            security = "none"
        else:
            raise TransportError("LUXMAIL_SMTP_SECURITY must be starttls, implicit or none")
        return cls(
            host=str(settings.LUXMAIL_SMTP_HOST),
            port=settings.LUXMAIL_SMTP_PORT,
            security=security,
            username=settings.LUXMAIL_SMTP_USER,
            password=settings.LUXMAIL_SMTP_PASSWORD,
            ca_file=settings.LUXMAIL_SMTP_CA_FILE,
            timeout=float(conf.smtp_timeout()),
        )


@dataclass(frozen=True)
class Outcome:
    kind: Kind
    code: int | None
    reply: str
    # The command a refusal answered (MAIL, RCPT or DATA); "" when no reply was refused.
    stage: str = ""

    @property
    def accepted(self) -> bool:
        return self.kind == "sent"


def verifying_context(ca_file: str | None = None) -> ssl.SSLContext:
    """The one verifying client context of the code base (``campaigns.secure.tls``).

    Imported late: ``campaigns.secure`` builds its errors on this module's exceptions.
    """

    return shared(ca_file)


def _classify(code: int, reply: bytes | str, stage: str = "") -> Outcome:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    text = redact(" ".join(text.split()))[:480]
    if 200 <= code < 300:
        return Outcome("sent", code, text)
    if 400 <= code < 500:
        return Outcome("transient", code, text, stage)
    return Outcome("permanent", code, text, stage)


@dataclass(frozen=True)
class TlsSession:
    """What delivery proof records about one SMTP session (``DeliveryProof``).

    ``version`` is empty when the session is plaintext (dev sink, opportunistic
    delivery to a server without STARTTLS). ``verified``: the certificate chain and
    host name were checked (a verifying context), not merely encrypted.
    """

    host: str
    port: int
    route: str  # "relay" or "direct"
    version: str = ""
    cipher: str = ""
    cert_sha256: str = ""
    verified: bool = False
    mta_sts: str = ""
    secured_at: datetime | None = None


def tls_session(
    smtp: smtplib.SMTP, *, host: str, port: int, route: str, mta_sts: str = ""
) -> TlsSession:
    """Read the TLS details of an open session from its socket (after STARTTLS or an
    implicit-TLS connect). Called once per connection, never per message."""
    sock = getattr(smtp, "sock", None)
    if not isinstance(sock, ssl.SSLSocket):
        return TlsSession(host=host, port=port, route=route, mta_sts=mta_sts)
    cipher = sock.cipher()
    der = sock.getpeercert(binary_form=True)
    context = sock.context
    return TlsSession(
        host=host,
        port=port,
        route=route,
        version=sock.version() or "",
        cipher=cipher[0] if cipher else "",
        cert_sha256=hashlib.sha256(der).hexdigest() if der else "",
        verified=context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname,
        mta_sts=mta_sts,
        secured_at=timezone.now(),
    )


class Connection:
    """One open SMTP session to the relay (or, through :meth:`from_smtp`, to an MX)."""

    def __init__(
        self,
        config: RelayConfig,
        *,
        smtp: smtplib.SMTP | None = None,
        route: str = "relay",
        mta_sts: str = "",
    ):
        self.config = config
        self.smtp = smtp if smtp is not None else self._open()
        self.session = tls_session(
            self.smtp, host=config.host, port=config.port, route=route, mta_sts=mta_sts
        )
        self.pipelining = self.smtp.has_extn("pipelining")
        self.chunking = self.pipelining and self.smtp.has_extn("chunking")
        self.opened_at = time.monotonic()
        self.used_at = self.opened_at
        self.broken = False

    @classmethod
    def from_smtp(cls, smtp: smtplib.SMTP, config: RelayConfig, *, mta_sts: str = "") -> Connection:
        """Wrap a session already opened and secured elsewhere, ready for ``MAIL FROM``.

        Direct-to-MX delivery opens its sessions with ``campaigns.secure.tls.mx_connect``
        (verified STARTTLS) or ``mx_connect_opportunistic``; sending, PIPELINING and the
        outcome classification are then the same as for the relay. ``config`` only
        describes the session (host, port, security); it is never used to reconnect.
        """
        return cls(config, smtp=smtp, route="direct", mta_sts=mta_sts)

    def _open(self) -> smtplib.SMTP:
        config = self.config
        helo = config.helo or socket.getfqdn()
        try:
            if config.security == "implicit":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    config.host,
                    config.port,
                    local_hostname=helo,
                    timeout=config.timeout,
                    context=verifying_context(config.ca_file),
                )
            else:
                smtp = smtplib.SMTP(
                    config.host, config.port, local_hostname=helo, timeout=config.timeout
                )
        except ssl.SSLError as error:
            raise TlsRefused(
                f"TLS handshake with the relay failed: {error.__class__.__name__}"
            ) from None
        except (OSError, smtplib.SMTPException) as error:
            raise TransportError(
                f"cannot connect to the relay: {error.__class__.__name__}"
            ) from None
        try:
            smtp.ehlo()
            if config.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise TlsRefused("the relay does not offer STARTTLS; refusing plaintext")
                try:
                    smtp.starttls(context=verifying_context(config.ca_file))
                except ssl.SSLCertVerificationError as error:
                    raise TlsRefused(
                        f"the relay's certificate is not trusted ({error.verify_message})"
                    ) from None
                except ssl.SSLError as error:
                    raise TlsRefused(f"STARTTLS handshake failed: {error.reason}") from None
                smtp.ehlo()
            if config.username:
                smtp.login(config.username, config.password or "")
        except TransportError:
            _close(smtp)
            raise
        except smtplib.SMTPAuthenticationError as error:
            _close(smtp)
            failure = TransportError(f"the relay refused our credentials ({error.smtp_code})")
            failure.transient = False
            raise failure from None
        except (OSError, smtplib.SMTPException) as error:
            _close(smtp)
            raise TransportError(f"relay session failed: {error.__class__.__name__}") from None
        return smtp

    def send(self, mail_from: str, recipient: str, data: bytes) -> Outcome:
        """Deliver one message (``data`` is CRLF bytes). Never raises for SMTP replies."""
        self.used_at = time.monotonic()
        smtp = self.smtp
        payload = _dot_stuff(data)
        body_sent = False
        try:
            if self.pipelining:
                smtp.send(f"MAIL FROM:<{mail_from}>\r\nRCPT TO:<{recipient}>\r\nDATA\r\n")
                replies = [smtp.getreply() for _ in range(3)]
                mail_reply, rcpt_reply, data_reply = replies
                if mail_reply[0] != 250:
                    return self._reject(mail_reply, data_reply, "MAIL")
                if rcpt_reply[0] not in (250, 251):
                    return self._reject(rcpt_reply, data_reply, "RCPT")
                if data_reply[0] != 354:
                    return self._after_failure(_classify(*data_reply, "DATA"))
            else:
                code, reply = smtp.mail(mail_from)
                if code != 250:
                    return self._after_failure(_classify(code, reply, "MAIL"))
                code, reply = smtp.rcpt(recipient)
                if code not in (250, 251):
                    return self._after_failure(_classify(code, reply, "RCPT"))
                smtp.putcmd("data")
                code, reply = smtp.getreply()
                if code != 354:
                    return self._after_failure(_classify(code, reply, "DATA"))
            body_sent = True
            smtp.send(payload)
            code, reply = smtp.getreply()
        except (OSError, smtplib.SMTPException) as error:
            self.broken = True
            name = error.__class__.__name__
            if body_sent:
                return Outcome("ambiguous", None, f"connection lost awaiting the reply ({name})")
            return Outcome("transient", None, f"connection failed ({name})")
        outcome = _classify(code, reply, "DATA")
        if code == 421:
            self.broken = True
        return outcome

    def send_many(self, items: Sequence[tuple[str, str, bytes]]) -> list[Outcome]:
        """Deliver ``items`` (mail from, recipient, CRLF data) in order; one outcome each
        for a prefix of ``items``: shorter when the session broke, and then nothing of
        the messages left out was transmitted (the caller sends them on a new session).

        With PIPELINING the message content starts a command group (RFC 2920 §3.1):
        each body goes out in one write with the *next* message's MAIL, RCPT and DATA,
        so a message costs one round trip instead of two. Replies are still read and
        classified one by one, and any refusal falls back to the careful path of
        :meth:`send` (RSET before the next transaction).
        """
        if not self.pipelining:
            outcomes: list[Outcome] = []
            for mail_from, recipient, data in items:
                outcomes.append(self.send(mail_from, recipient, data))
                if self.broken:
                    break
            return outcomes
        if self.chunking:
            return self._send_chunked(items)
        return self._send_pipelined(items)

    def _send_chunked(self, items: Sequence[tuple[str, str, bytes]]) -> list[Outcome]:
        """RFC 3030 + 2920: every transaction of ``items`` written before any reply is
        read. The first message's MAIL and RCPT are answered before anything else goes
        out, so a session the relay already closed costs nothing ("transient", resent
        on a new session) instead of a run of ambiguous messages."""
        if not items:
            return []
        smtp = self.smtp
        self.used_at = time.monotonic()
        first_from, first_to, _ = items[0]
        try:
            smtp.send(f"MAIL FROM:<{first_from}>\r\nRCPT TO:<{first_to}>\r\n".encode())
            first = (smtp.getreply(), smtp.getreply())
        except (OSError, smtplib.SMTPException) as error:
            self.broken = True
            return [Outcome("transient", None, f"connection failed ({error.__class__.__name__})")]
        if first[0][0] != 250 or first[1][0] not in (250, 251):
            # Refused before any body: the careful path decides this one (after RSET).
            stage = "MAIL" if first[0][0] != 250 else "RCPT"
            reply = first[0] if stage == "MAIL" else first[1]
            return [self._after_failure(_classify(*reply, stage))]
        # Write every body (each message in one write); ``written`` bodies may have
        # reached the server even if the session breaks from here on.
        written = 0
        failed_write = False
        for index, (mail_from, recipient, data) in enumerate(items):
            body = data if data.endswith(b"\r\n") else data + b"\r\n"
            head = b"" if index == 0 else _envelope_only(mail_from, recipient)
            try:
                written = index + 1  # from the first byte on, the body may arrive whole
                # The socket itself: smtplib's send() closes the session on an error,
                # and the replies already received are still to be read.
                if smtp.sock is None:
                    raise smtplib.SMTPServerDisconnected("session closed")
                smtp.sock.sendall(head + b"BDAT %d LAST\r\n" % len(body) + body)
            except (OSError, smtplib.SMTPException):
                self.broken = True
                failed_write = True
                break
        outcomes: list[Outcome] = []
        careful: list[int] = []  # refused as an artefact of an earlier refusal: resend
        for index in range(written):
            try:
                if smtp.sock is None:
                    raise smtplib.SMTPServerDisconnected("session closed")
                if index == 0:
                    replies = [*first, smtp.getreply()]
                else:
                    replies = [smtp.getreply(), smtp.getreply(), smtp.getreply()]
            except (OSError, smtplib.SMTPException) as error:
                self.broken = True
                name = error.__class__.__name__
                outcomes += [
                    Outcome("ambiguous", None, f"connection lost awaiting the reply ({name})")
                ] * (written - index)
                return outcomes
            (mail_code, _), (rcpt_code, _), (bdat_code, _) = replies
            # What the recipient got decides: refused at RCPT, it got nothing; a body
            # accepted (2xx) was delivered, whatever an earlier reply said.
            if rcpt_code not in (250, 251):
                outcome, decisive = _classify(*replies[1], "RCPT"), rcpt_code
            elif 200 <= bdat_code < 300:
                outcome, decisive = _classify(*replies[2], "DATA"), bdat_code
            elif mail_code != 250:
                outcome, decisive = _classify(*replies[0], "MAIL"), mail_code
            else:
                outcome, decisive = _classify(*replies[2], "DATA"), bdat_code
            if decisive == 503:
                # "Bad sequence": the state an earlier refusal left, not this message's
                # fate. Nothing of it was accepted: it goes again, alone, after RSET.
                careful.append(index)
            if 421 in (mail_code, rcpt_code, bdat_code):
                self.broken = True
            outcomes.append(outcome)
        if failed_write:
            self.broken = True
        if careful or any(not o.accepted for o in outcomes):
            if not self.broken:
                self._reset()
            for index in careful:
                if self.broken:
                    outcomes[index] = Outcome(
                        "transient", None, "refused out of sequence; nothing accepted"
                    )
                else:
                    outcomes[index] = self.send(*items[index])
        return outcomes

    def _send_pipelined(self, items: Sequence[tuple[str, str, bytes]]) -> list[Outcome]:
        smtp = self.smtp
        outcomes = []
        announced = False  # the next item's MAIL/RCPT/DATA already went out
        for index, (mail_from, recipient, data) in enumerate(items):
            self.used_at = time.monotonic()
            body_sent = False
            try:
                if not announced:
                    smtp.send(_envelope(mail_from, recipient))
                announced = False
                mail_reply, rcpt_reply, data_reply = (
                    smtp.getreply(),
                    smtp.getreply(),
                    smtp.getreply(),
                )
                if mail_reply[0] != 250:
                    outcomes.append(self._reject(mail_reply, data_reply, "MAIL"))
                elif rcpt_reply[0] not in (250, 251):
                    outcomes.append(self._reject(rcpt_reply, data_reply, "RCPT"))
                elif data_reply[0] != 354:
                    outcomes.append(self._after_failure(_classify(*data_reply, "DATA")))
                else:
                    following = b""
                    if index + 1 < len(items):
                        following = _envelope(*items[index + 1][:2])
                    body_sent = True
                    smtp.send(_dot_stuff(data) + following)
                    announced = bool(following)
                    code, reply = smtp.getreply()
                    outcomes.append(_classify(code, reply, "DATA"))
                    if code == 421:
                        self.broken = True
            except (OSError, smtplib.SMTPException) as error:
                self.broken = True
                name = error.__class__.__name__
                if body_sent:
                    outcomes.append(
                        Outcome("ambiguous", None, f"connection lost awaiting the reply ({name})")
                    )
                else:
                    outcomes.append(Outcome("transient", None, f"connection failed ({name})"))
            if self.broken:
                break
        return outcomes

    def _reject(
        self, reply: tuple[int, bytes], data_reply: tuple[int, bytes], stage: str
    ) -> Outcome:
        # The pipelined DATA was refused along with the earlier command (503/554), or,
        # exceptionally, accepted: then end the empty transaction with a lone dot.
        if data_reply[0] == 354:
            self.smtp.send(b".\r\n")
            self.smtp.getreply()
        return self._after_failure(_classify(*reply, stage))

    def _after_failure(self, outcome: Outcome) -> Outcome:
        self._reset()
        return outcome

    def _reset(self) -> None:
        """RSET; a session that does not answer it with 250 is not used again."""
        try:
            code, _ = self.smtp.rset()
            if code != 250:
                self.broken = True
        except (OSError, smtplib.SMTPException):
            self.broken = True

    def close(self) -> None:
        _close(self.smtp)


def _envelope(mail_from: str, recipient: str) -> bytes:
    return f"MAIL FROM:<{mail_from}>\r\nRCPT TO:<{recipient}>\r\nDATA\r\n".encode()


def _envelope_only(mail_from: str, recipient: str) -> bytes:
    return f"MAIL FROM:<{mail_from}>\r\nRCPT TO:<{recipient}>\r\n".encode()


def _dot_stuff(data: bytes) -> bytes:
    if data.startswith(b"."):
        data = b"." + data
    data = data.replace(b"\r\n.", b"\r\n..")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def _close(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        smtp.close()


class Pool:
    """Idle connections per relay, kept for the life of the worker process."""

    MAX_IDLE_SECONDS = 60.0
    MAX_AGE_SECONDS = 600.0

    def __init__(self) -> None:
        self._idle: dict[RelayConfig, list[Connection]] = {}
        self._lock = threading.Lock()

    def acquire(self, config: RelayConfig) -> Connection:
        now = time.monotonic()
        with self._lock:
            idle = self._idle.setdefault(config, [])
            while idle:
                connection = idle.pop()
                if (
                    now - connection.used_at < self.MAX_IDLE_SECONDS
                    and now - connection.opened_at < self.MAX_AGE_SECONDS
                ):
                    return connection
                connection.close()
        return Connection(config)

    def release(self, connection: Connection) -> None:
        if connection.broken:
            connection.close()
            return
        with self._lock:
            self._idle.setdefault(connection.config, []).append(connection)

    def close_all(self) -> None:
        with self._lock:
            for connections in self._idle.values():
                for connection in connections:
                    connection.close()
            self._idle.clear()


_pool = Pool()


def pool() -> Pool:
    return _pool
