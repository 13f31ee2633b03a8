"""Where a built message goes: the relay, or straight to the recipient domain's MX.

The organization's delivery mode (``OrgSettings.delivery_mode``) decides:

* **relay** — every message goes through the pooled relay connection
  (``campaigns/sending/transport.py``, verified TLS to the relay);
* **direct** — each message goes to its domain's MX. The channel decision
  (``campaigns/sending/channels.py``) says whether the session must be *verified* TLS (the
  ``tls`` channel: the message itself carries PHI) or may be *opportunistic* (portal
  notices, S/MIME and PGP messages, templates without PHI). A verified session comes
  from :func:`campaigns.secure.tls.mx_connect`, which refuses rather than downgrades;
  the refusal defers the message and updates the domain's cached capability, so the
  next try chooses the portal instead — never plaintext.

:class:`DirectConnections` keeps one open session per (domain, verified) for the
length of a batch. :func:`deliver_one` sends a single notice (portal codes, reply
notices) by the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass

from campaigns.secure import tls
from campaigns.secure.tls import domain_of
from campaigns.sending.transport import (
    Connection,
    Outcome,
    RelayConfig,
    TlsSession,
    TransportError,
    pool,
)


@dataclass(frozen=True)
class Route:
    """Direct-to-MX delivery of one message: its domain and whether TLS must verify."""

    domain: str
    verified: bool


class DirectConnections:
    """Open direct-to-MX sessions of one batch, keyed by (domain, verified)."""

    def __init__(self) -> None:
        self._open: dict[tuple[str, bool], Connection] = {}

    def send(self, route: Route, *, mail_from: str, recipient: str, data: bytes) -> Outcome:
        """Deliver one message on its route; never raises for network or TLS problems.

        A refused verified session (no STARTTLS, untrusted certificate) or an
        unreachable domain is ``transient``: the message is deferred, nothing was sent.
        """
        key = (route.domain, route.verified)
        connection = self._open.get(key)
        if connection is None or connection.broken:
            if connection is not None:
                connection.close()
                del self._open[key]
            try:
                connection = _connect(route)
            except TransportError as error:
                return Outcome("transient" if error.transient else "permanent", None, str(error))
            self._open[key] = connection
        return connection.send(mail_from, recipient, data)

    def session(self, route: Route) -> TlsSession | None:
        """The TLS details of the session that carried ``route``'s last message."""
        connection = self._open.get((route.domain, route.verified))
        return connection.session if connection is not None else None

    def close(self) -> None:
        for connection in self._open.values():
            connection.close()
        self._open.clear()


def _connect(route: Route) -> Connection:

    if route.verified:
        smtp, capability = tls.mx_connect(route.domain)
        host = capability.mx_host or route.domain
        return Connection.from_smtp(
            smtp, RelayConfig(host, 25, "starttls"), mta_sts=capability.mta_sts_mode or ""
        )
    smtp, encrypted = tls.mx_connect_opportunistic(route.domain)
    # The MX host that answered (``_DirectSMTP`` keeps the name it connected to).
    host = str(getattr(smtp, "_host", "") or route.domain)
    return Connection.from_smtp(smtp, RelayConfig(host, 25, "starttls" if encrypted else "none"))


def deliver_one(*, mail_from: str, recipient: str, data: bytes, direct: bool) -> Outcome:
    """Send one message that carries no PHI in clear (a notice) by the delivery mode.

    ``direct``: to the recipient domain's MX, STARTTLS when offered; otherwise through
    the pooled relay connection. Never raises for SMTP or network problems.
    """
    if direct:
        connections = DirectConnections()
        try:
            return connections.send(
                Route(domain_of(recipient), verified=False),
                mail_from=mail_from,
                recipient=recipient,
                data=data,
            )
        finally:
            connections.close()
    config = RelayConfig.from_settings()
    try:
        connection = pool().acquire(config)
    except TransportError as error:
        return Outcome("transient" if error.transient else "permanent", None, str(error))
    try:
        return connection.send(mail_from, recipient, data)
    finally:
        pool().release(connection)
