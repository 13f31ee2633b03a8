"""Enforced, verified TLS for SMTP delivery: the relay connection and direct-to-MX.

Two delivery modes (issue 5, item 2):

*Relay* — the connection itself is ``campaigns.sending.transport.Connection`` (verified
implicit TLS or STARTTLS, refused rather than downgraded, pooled); it is not duplicated
here. Whether the relay enforces TLS *onward* is the organization's declaration:
:func:`relay_capability` turns it into the :class:`Capability` the channel decision
uses.

*Direct to MX* — :func:`domain_can_receive_verified_tls` looks up the domain's MX hosts
(dnspython; RFC 5321 §5.1 implicit MX on A/AAAA when there is none; RFC 7505 null MX),
applies the domain's MTA-STS policy (RFC 8461) when one is published, and probes the
hosts in preference order: connect, EHLO, STARTTLS with the certificate verified
against the MX host name, EHLO, QUIT — never MAIL/RCPT/DATA. The result is cached per
domain in the Django cache (Redis) with a TTL. :func:`mx_connect` opens the delivery
connection the same way and hands it back ready for ``MAIL FROM``.

``LUXMAIL_MX_OVERRIDES`` routes chosen domains to fixed ``host:port`` (tests, on-prem
routing; MTA-STS is not consulted for them) and ``LUXMAIL_MX_CA_FILE`` replaces the
system trust store for MX and MTA-STS verification (tests: the test CA).

Nothing here logs or raises with an e-mail address; reasons name no domain.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import http.client
import ipaddress
import logging
import re
import smtplib
import socket
import ssl
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import dns.exception
import dns.resolver
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured

from campaigns.secure.errors import DestinationUnreachableError, TLSRequiredError
from luxmail import conf

__all__ = [
    "Capability",
    "DirectRouting",
    "MtaStsPolicy",
    "MxTarget",
    "TLSStatus",
    "capability_forget",
    "domain_can_receive_verified_tls",
    "domain_of",
    "fetch_mta_sts_policy",
    "mta_sts_policy",
    "mx_connect",
    "mx_connect_opportunistic",
    "mx_pattern_matches",
    "mx_targets",
    "parse_mta_sts_policy",
    "parse_mta_sts_txt",
    "parse_mx_overrides",
    "relay_capability",
    "verifying_context",
]

logger = logging.getLogger(__name__)

# How long a probe result is trusted. Failures are re-checked sooner so a destination
# that fixes its TLS gets verified delivery again within the hour; unreachable ones
# are transient and re-checked after minutes.
TTL_SECONDS = {
    "verified_tls": 6 * 3600,
    "no_tls": 3600,
    "untrusted_cert": 3600,
    "unreachable": 300,
}
DEFAULT_TIMEOUT = 20.0
MTA_STS_MAX_BYTES = 64 * 1024  # RFC 8461 §3.3
MTA_STS_MAX_AGE = 31_557_600  # RFC 8461 §3.2
_CACHE_PREFIX = "luxmail:secure:"
_LOCK_WAIT_SECONDS = 25.0


class TLSStatus(enum.StrEnum):
    VERIFIED_TLS = "verified_tls"
    NO_TLS = "no_tls"
    UNTRUSTED_CERT = "untrusted_cert"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class Capability:
    """What a destination can receive; ``reason`` is operator-facing, names no domain."""

    status: TLSStatus
    reason: str
    mx_host: str | None = None
    mta_sts_mode: str | None = None
    checked_at: float = field(default_factory=time.time)

    @property
    def verified(self) -> bool:
        return self.status == TLSStatus.VERIFIED_TLS

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = str(self.status)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Capability:
        return cls(
            status=TLSStatus(data["status"]),
            reason=str(data["reason"]),
            mx_host=data.get("mx_host"),
            mta_sts_mode=data.get("mta_sts_mode"),
            checked_at=float(data.get("checked_at", 0.0)),
        )


@dataclass(frozen=True)
class MxTarget:
    """One SMTP server to try: ``host`` is the name its certificate must match."""

    host: str
    port: int
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class MtaStsPolicy:
    mode: str  # enforce | testing | none
    mx: tuple[str, ...]
    max_age: int
    policy_id: str = ""

    def allows(self, host: str) -> bool:
        return any(mx_pattern_matches(pattern, host) for pattern in self.mx)


@dataclass(frozen=True)
class DirectRouting:
    """How direct-to-MX delivery finds and verifies servers (defaults from settings)."""

    resolver: dns.resolver.Resolver | None = None
    overrides: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    ca_file: str | None = None
    smtp_port: int = 25
    https_port: int = 443
    timeout: float = DEFAULT_TIMEOUT
    local_hostname: str | None = None

    @classmethod
    def from_settings(cls) -> DirectRouting:
        return cls(
            overrides=parse_mx_overrides(conf.mx_overrides()),
            ca_file=conf.mx_ca_file(),
            local_hostname=_default_local_hostname(),
        )

    def dns(self) -> dns.resolver.Resolver:
        return self.resolver or dns.resolver.get_default_resolver()


class _ProbeFailure(Exception):
    def __init__(self, status: TLSStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# --- configuration ---------------------------------------------------------------------


def parse_mx_overrides(entries: Iterable[str] | str | None) -> dict[str, tuple[str, int]]:
    """``["example.org=127.0.0.1:2525", "v6.test=[::1]:2526"]`` → ``{domain: (host, port)}``."""
    if entries is None:
        return {}
    if isinstance(entries, str):
        entries = [item for item in entries.split(",") if item.strip()]
    result: dict[str, tuple[str, int]] = {}
    for entry in entries:
        domain, separator, target = entry.strip().partition("=")
        match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d+)|([^:\s\[\]]+):(\d+)", target.strip())
        if not separator or not domain.strip() or match is None:
            raise ImproperlyConfigured(
                f"LUXMAIL_MX_OVERRIDES entry {entry!r} must look like domain=host:port "
                "(IPv6 as domain=[::1]:port)."
            )
        host = match.group(1) or match.group(3)
        port = int(match.group(2) or match.group(4))
        if not 0 < port < 65536:
            raise ImproperlyConfigured(f"LUXMAIL_MX_OVERRIDES entry {entry!r} has a bad port.")
        result[_normalize_domain(domain)] = (host, port)
    return result


@lru_cache(maxsize=16)
def verifying_context(ca_file: str | None = None) -> ssl.SSLContext:
    """A client context that verifies the chain and the host name (TLS 1.2+).

    Cached per CA file: loading a trust store costs milliseconds, and an ``SSLContext``
    is safe to share between connections and threads.
    """
    context = ssl.create_default_context(cafile=ca_file or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _default_local_hostname() -> str:
    explicit = conf.smtp_helo_name()
    if explicit:
        return str(explicit)
    base = conf.base_url()
    host = base.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
    return host or "localhost"


# --- relay -----------------------------------------------------------------------------


def relay_capability(*, enforces_tls_onward: bool) -> Capability:
    """The capability of every destination in relay mode, from the org's declaration."""
    if enforces_tls_onward:
        return Capability(
            status=TLSStatus.VERIFIED_TLS,
            reason="delivered through the relay over verified TLS; the relay enforces TLS onward",
        )
    return Capability(
        status=TLSStatus.NO_TLS,
        reason="the relay is not declared to enforce TLS onward to the destination",
    )


def _starttls(connection: smtplib.SMTP, context: ssl.SSLContext, *, where: str) -> None:
    code, _message = connection.ehlo()
    if not 200 <= code < 300:
        raise TLSRequiredError(
            f"The {where} refused EHLO, so STARTTLS cannot be negotiated; nothing was sent.",
            reason="no_tls",
        )
    if not connection.has_extn("starttls"):
        raise TLSRequiredError(
            f"The {where} does not offer STARTTLS; TLS is required, so nothing was sent.",
            reason="no_tls",
        )
    try:
        connection.starttls(context=context)
    except ssl.SSLCertVerificationError:
        raise TLSRequiredError(
            f"The {where}'s TLS certificate did not verify (untrusted issuer, expired, or not "
            "valid for its host name); nothing was sent.",
            reason="untrusted_cert",
        ) from None
    except ssl.SSLError:
        raise TLSRequiredError(
            f"The TLS handshake with the {where} failed; nothing was sent.", reason="tls_failed"
        ) from None
    except smtplib.SMTPResponseException:
        raise TLSRequiredError(
            f"The {where} refused STARTTLS; TLS is required, so nothing was sent.",
            reason="no_tls",
        ) from None
    connection.ehlo()


def _close(connection: smtplib.SMTP) -> None:
    with contextlib.suppress(OSError):
        connection.close()


# --- direct to MX: DNS -----------------------------------------------------------------


def domain_of(address: str) -> str:
    """The normalized (lower-case, IDNA) domain of an e-mail address."""
    _local, separator, domain = address.strip().rpartition("@")
    if not separator or not domain:
        raise ValueError("Not an e-mail address.")
    return _normalize_domain(domain)


def _normalize_domain(domain: str) -> str:
    cleaned = domain.strip().rstrip(".").lower()
    try:
        return cleaned.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError("Not a valid domain name.") from None


def mx_targets(domain: str, *, routing: DirectRouting | None = None) -> list[MxTarget]:
    """The servers that receive mail for ``domain``, best first.

    Overrides win; then MX records by preference; with no MX record the domain itself
    (RFC 5321 §5.1). Raises :class:`DestinationUnreachableError` for a null MX, a
    domain that does not exist or DNS that does not answer.
    """
    routing = routing or DirectRouting.from_settings()
    domain = _normalize_domain(domain)
    override = routing.overrides.get(domain)
    if override is not None:
        host, port = override
        return [MxTarget(host=host, port=port, addresses=(host,))]
    resolver = routing.dns()
    try:
        answer = resolver.resolve(domain, "MX")
        records = sorted(
            ((int(r.preference), r.exchange.to_text().rstrip(".").lower()) for r in answer),
            key=lambda item: item[0],
        )
    except dns.resolver.NXDOMAIN:
        raise DestinationUnreachableError("The recipient's domain does not exist.") from None
    except dns.resolver.NoAnswer:
        records = [(0, domain)]  # implicit MX
    except (dns.resolver.NoNameservers, dns.exception.Timeout):
        raise DestinationUnreachableError(
            "DNS did not answer for the recipient's domain."
        ) from None
    if len(records) == 1 and records[0][1] in ("", "."):
        raise DestinationUnreachableError(
            "The recipient's domain publishes a null MX: it accepts no mail."
        )
    targets: list[MxTarget] = []
    for _preference, host in records:
        if host in ("", "."):
            continue
        addresses = _addresses(host, resolver)
        if addresses:
            targets.append(MxTarget(host=host, port=routing.smtp_port, addresses=addresses))
    if not targets:
        raise DestinationUnreachableError(
            "None of the recipient domain's mail servers has an address."
        )
    return targets


def _addresses(host: str, resolver: dns.resolver.Resolver) -> tuple[str, ...]:
    try:
        ipaddress.ip_address(host)
        return (host,)
    except ValueError:
        pass
    found: list[str] = []
    for rdtype in ("AAAA", "A"):
        try:
            found.extend(r.to_text() for r in resolver.resolve(host, rdtype))
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            continue
        except (dns.resolver.NoNameservers, dns.exception.Timeout):
            continue
    # IPv4 first: many hosts (and CI sandboxes) have no IPv6 route.
    return tuple(sorted(found, key=lambda a: ":" in a))


# --- direct to MX: MTA-STS (RFC 8461) --------------------------------------------------


def parse_mta_sts_txt(texts: Sequence[str]) -> str | None:
    """The policy id from ``_mta-sts`` TXT strings, or None unless exactly one is valid."""
    ids: list[str] = []
    for text in texts:
        if not text.startswith("v=STSv1"):
            continue
        fields: dict[str, str] = {}
        for part in text.split(";"):
            key, _sep, value = part.strip().partition("=")
            if key:
                fields[key.strip()] = value.strip()
        policy_id = fields.get("id", "")
        if fields.get("v") == "STSv1" and re.fullmatch(r"[A-Za-z0-9]{1,32}", policy_id):
            ids.append(policy_id)
        else:
            return None
    return ids[0] if len(ids) == 1 else None


def parse_mta_sts_policy(text: str, *, policy_id: str = "") -> MtaStsPolicy:
    """Parse a policy file; raises ValueError when it is not a valid STSv1 policy."""
    version = mode = None
    max_age: int | None = None
    patterns: list[str] = []
    for line in text.splitlines():
        key, separator, value = line.partition(":")
        if not separator:
            continue
        key, value = key.strip().lower(), value.strip()
        if key == "version":
            version = value
        elif key == "mode":
            mode = value.lower()
        elif key == "max_age":
            if not value.isdigit():
                raise ValueError("max_age is not a number")
            max_age = min(int(value), MTA_STS_MAX_AGE)
        elif key == "mx":
            patterns.append(value.lower().rstrip("."))
    if version != "STSv1":
        raise ValueError("not an STSv1 policy")
    if mode not in {"enforce", "testing", "none"}:
        raise ValueError("mode must be enforce, testing or none")
    if max_age is None:
        raise ValueError("max_age is missing")
    if mode != "none" and not patterns:
        raise ValueError("an enforce or testing policy needs mx lines")
    return MtaStsPolicy(mode=mode, mx=tuple(patterns), max_age=max_age, policy_id=policy_id)


def mx_pattern_matches(pattern: str, host: str) -> bool:
    """RFC 8461 §4.1: exact match, or ``*.`` matching exactly one left-most label."""
    pattern = pattern.lower().rstrip(".")
    host = host.lower().rstrip(".")
    if pattern.startswith("*."):
        label, _dot, rest = host.partition(".")
        return bool(label) and rest == pattern[2:]
    return host == pattern


def fetch_mta_sts_policy(domain: str, *, routing: DirectRouting | None = None) -> str:
    """GET ``https://mta-sts.<domain>/.well-known/mta-sts.txt`` (RFC 8461 §3.3).

    The certificate must verify for ``mta-sts.<domain>``; redirects are not followed;
    only a 200 ``text/plain`` answer of at most 64 KB counts. Raises ``OSError``,
    ``ssl.SSLError``, ``http.client.HTTPException`` or ``ValueError`` otherwise.
    """
    routing = routing or DirectRouting.from_settings()
    host = f"mta-sts.{_normalize_domain(domain)}"
    addresses = _addresses(host, routing.dns())
    if not addresses:
        raise OSError("the MTA-STS policy host has no address")
    context = verifying_context(routing.ca_file)
    last_error: Exception | None = None
    for address in addresses:
        try:
            raw = socket.create_connection((address, routing.https_port), timeout=routing.timeout)
        except OSError as error:
            last_error = error
            continue
        with raw, context.wrap_socket(raw, server_hostname=host) as tls:
            request = (
                f"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: {host}\r\n"
                "User-Agent: LuxMail MTA-STS\r\nAccept: text/plain\r\nConnection: close\r\n\r\n"
            )
            tls.sendall(request.encode("ascii"))
            response = http.client.HTTPResponse(tls)
            response.begin()
            if response.status != 200:
                raise ValueError(f"policy fetch answered HTTP {response.status}")
            content_type = (response.getheader("Content-Type") or "").split(";")[0].strip()
            if content_type.lower() != "text/plain":
                raise ValueError("policy is not text/plain")
            body = response.read(MTA_STS_MAX_BYTES + 1)
            if len(body) > MTA_STS_MAX_BYTES:
                raise ValueError("policy is larger than 64 KB")
            return body.decode("utf-8")
    raise last_error or OSError("MTA-STS policy host unreachable")


def mta_sts_policy(domain: str, *, routing: DirectRouting | None = None) -> MtaStsPolicy | None:
    """The domain's MTA-STS policy (cached for its ``max_age``), or None.

    Follows RFC 8461 §5.1: a cached policy whose id matches the TXT record is reused; a
    new id triggers a fetch; without a TXT record (or when a fetch fails) an unexpired
    cached policy stays in force.
    """
    routing = routing or DirectRouting.from_settings()
    domain = _normalize_domain(domain)
    key = _cache_key("mta-sts", domain)
    cached_data = cache.get(key)
    cached: MtaStsPolicy | None = None
    if isinstance(cached_data, dict) and cached_data.get("expires", 0) > time.time():
        cached = MtaStsPolicy(
            mode=cached_data["mode"],
            mx=tuple(cached_data["mx"]),
            max_age=int(cached_data["max_age"]),
            policy_id=cached_data["policy_id"],
        )
    try:
        answer = routing.dns().resolve(f"_mta-sts.{domain}", "TXT")
        texts = [b"".join(r.strings).decode("utf-8", "replace") for r in answer]
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        texts = []
    except (dns.resolver.NoNameservers, dns.exception.Timeout):
        return cached
    policy_id = parse_mta_sts_txt(texts)
    if policy_id is None:
        return cached
    if cached is not None and cached.policy_id == policy_id:
        return cached
    try:
        policy = parse_mta_sts_policy(
            fetch_mta_sts_policy(domain, routing=routing), policy_id=policy_id
        )
    except (OSError, ssl.SSLError, http.client.HTTPException, ValueError, UnicodeError):
        logger.info("MTA-STS policy fetch failed; keeping the cached policy if any")
        return cached
    if policy.max_age > 0:
        cache.set(
            key,
            {
                "mode": policy.mode,
                "mx": list(policy.mx),
                "max_age": policy.max_age,
                "policy_id": policy.policy_id,
                "expires": time.time() + policy.max_age,
            },
            timeout=policy.max_age,
        )
    return policy


# --- direct to MX: probing and connecting ----------------------------------------------


class _DirectSMTP(smtplib.SMTP):
    """``smtplib.SMTP`` that connects to a chosen address while verifying the MX name."""

    def __init__(self, address: str, **kwargs: Any) -> None:
        self._address = address
        super().__init__(**kwargs)

    def connect(self, host: str = "localhost", port: int = 0, source_address: Any = None) -> Any:
        # smtplib sets ``_host`` (the name STARTTLS verifies) only in __init__.
        self._host = host
        return super().connect(host, port, source_address)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return socket.create_connection((self._address, port), timeout, self.source_address)


def _open_verified(target: MxTarget, routing: DirectRouting) -> smtplib.SMTP:
    """Connect to one server and negotiate verified STARTTLS, or raise _ProbeFailure."""
    context = verifying_context(routing.ca_file)
    helo = routing.local_hostname or _default_local_hostname()
    last: Exception | None = None
    for address in target.addresses or (target.host,):
        connection = _DirectSMTP(address, local_hostname=helo, timeout=routing.timeout)
        try:
            connection.connect(target.host, target.port)
        except (OSError, smtplib.SMTPException) as error:
            _close(connection)
            last = error
            continue
        try:
            _starttls(connection, context, where="receiving mail server")
        except TLSRequiredError as error:
            _close(connection)
            status = (
                TLSStatus.UNTRUSTED_CERT
                if error.reason in {"untrusted_cert", "tls_failed"}
                else TLSStatus.NO_TLS
            )
            raise _ProbeFailure(status, _REASONS[status]) from None
        except (OSError, smtplib.SMTPException) as error:
            _close(connection)
            last = error
            continue
        return connection
    raise _ProbeFailure(
        TLSStatus.UNREACHABLE,
        "the receiving mail server could not be reached"
        + (f" ({type(last).__name__})" if last else ""),
    )


_REASONS = {
    TLSStatus.VERIFIED_TLS: "the receiving mail server offers STARTTLS with a certificate "
    "valid for its host name",
    TLSStatus.NO_TLS: "the receiving mail server does not offer STARTTLS",
    TLSStatus.UNTRUSTED_CERT: "the receiving mail server's TLS certificate is not trusted or "
    "does not match its host name",
    TLSStatus.UNREACHABLE: "no receiving mail server could be reached",
}


def _connect_domain(domain: str, routing: DirectRouting) -> tuple[smtplib.SMTP | None, Capability]:
    """Try the domain's servers in order; return the first verified connection."""
    try:
        targets = mx_targets(domain, routing=routing)
    except DestinationUnreachableError as error:
        return None, Capability(status=TLSStatus.UNREACHABLE, reason=str(error))
    policy: MtaStsPolicy | None = None
    if _normalize_domain(domain) not in routing.overrides:
        policy = mta_sts_policy(domain, routing=routing)
    mode = policy.mode if policy is not None else None
    if policy is not None and policy.mode == "enforce":
        allowed = [t for t in targets if policy.allows(t.host)]
        if not allowed:
            return None, Capability(
                status=TLSStatus.UNTRUSTED_CERT,
                reason="no mail server of the domain matches its MTA-STS policy (enforce)",
                mta_sts_mode=mode,
            )
        targets = allowed
    first_failure: _ProbeFailure | None = None
    for target in targets:
        try:
            connection = _open_verified(target, routing)
        except _ProbeFailure as failure:
            if failure.status != TLSStatus.UNREACHABLE and first_failure is None:
                first_failure = failure
            continue
        suffix = " (MTA-STS enforce)" if mode == "enforce" else ""
        return connection, Capability(
            status=TLSStatus.VERIFIED_TLS,
            reason=_REASONS[TLSStatus.VERIFIED_TLS] + suffix,
            mx_host=target.host,
            mta_sts_mode=mode,
        )
    if first_failure is not None:
        return None, Capability(
            status=first_failure.status, reason=first_failure.reason, mta_sts_mode=mode
        )
    return None, Capability(
        status=TLSStatus.UNREACHABLE, reason=_REASONS[TLSStatus.UNREACHABLE], mta_sts_mode=mode
    )


def domain_can_receive_verified_tls(
    domain: str, *, routing: DirectRouting | None = None, refresh: bool = False
) -> Capability:
    """Whether mail to ``domain`` can be delivered over verified TLS (cached).

    Probes without sending any message (EHLO/STARTTLS/EHLO/QUIT). The result is cached
    in the Django cache for ``TTL_SECONDS[status]``; concurrent workers asking for the
    same domain wait for one probe instead of all probing. ``refresh`` ignores the
    cache. Never raises for network conditions: those become ``unreachable``.
    """
    routing = routing or DirectRouting.from_settings()
    normalized = _normalize_domain(domain)
    key = _cache_key("tls", normalized)
    if not refresh:
        cached = cache.get(key)
        if isinstance(cached, dict):
            return Capability.from_dict(cached)
    lock = key + ":probe"
    deadline = time.monotonic() + _LOCK_WAIT_SECONDS
    while not refresh and not cache.add(lock, 1, timeout=int(routing.timeout * 3) + 5):
        time.sleep(0.05)
        cached = cache.get(key)
        if isinstance(cached, dict):
            return Capability.from_dict(cached)
        if time.monotonic() > deadline:
            break
    try:
        connection, capability = _connect_domain(normalized, routing)
        if connection is not None:
            try:
                connection.quit()
            except (OSError, smtplib.SMTPException):
                _close(connection)
        cache.set(key, capability.as_dict(), timeout=TTL_SECONDS[capability.status])
        return capability
    finally:
        if not refresh:
            cache.delete(lock)


def capability_forget(domain: str) -> None:
    """Drop the cached capability (e.g. after a delivery found TLS no longer verifies)."""
    cache.delete(_cache_key("tls", _normalize_domain(domain)))


def mx_connect(
    domain: str, *, routing: DirectRouting | None = None
) -> tuple[smtplib.SMTP, Capability]:
    """Open a delivery connection to ``domain`` over verified TLS, ready for MAIL FROM.

    Raises :class:`TLSRequiredError` when the servers answer but none gives verified
    TLS (or MTA-STS excludes them) and :class:`DestinationUnreachableError` when none
    answers; in both cases no envelope command was sent. The cached capability is
    updated with what was found. The caller owns the connection (``quit()``).
    """
    routing = routing or DirectRouting.from_settings()
    normalized = _normalize_domain(domain)
    connection, capability = _connect_domain(normalized, routing)
    cache.set(
        _cache_key("tls", normalized), capability.as_dict(), timeout=TTL_SECONDS[capability.status]
    )
    if connection is not None:
        return connection, capability
    if capability.status == TLSStatus.UNREACHABLE:
        raise DestinationUnreachableError(capability.reason)
    raise TLSRequiredError(
        f"Verified TLS is required and {capability.reason}; nothing was sent.",
        reason=str(capability.status),
    )


@lru_cache(maxsize=1)
def _opportunistic_context() -> ssl.SSLContext:
    # Encrypts against passive listeners without authenticating the server: used only
    # for mail whose content needs no transport protection (see mx_connect_opportunistic).
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def mx_connect_opportunistic(
    domain: str, *, routing: DirectRouting | None = None
) -> tuple[smtplib.SMTP, bool]:
    """Open a delivery connection to ``domain`` with STARTTLS when offered, unverified.

    For messages that carry no PHI in clear: portal notices, S/MIME and PGP messages
    (their content is encrypted end to end) and templates without PHI under the
    ``opportunistic`` policy. A server that offers STARTTLS gets it (a failed handshake
    is retried without TLS, as MTAs do); one that does not gets plaintext. Returns the
    session, ready for ``MAIL FROM``, and whether TLS is active. Raises
    :class:`DestinationUnreachableError` when no server answers.
    """
    routing = routing or DirectRouting.from_settings()
    targets = mx_targets(_normalize_domain(domain), routing=routing)
    helo = routing.local_hostname or _default_local_hostname()
    last: Exception | None = None
    for target in targets:
        for address in target.addresses or (target.host,):
            for attempt_tls in (True, False):
                connection = _DirectSMTP(address, local_hostname=helo, timeout=routing.timeout)
                try:
                    connection.connect(target.host, target.port)
                    connection.ehlo()
                    if attempt_tls and connection.has_extn("starttls"):
                        connection.starttls(context=_opportunistic_context())
                        connection.ehlo()
                        return connection, True
                    return connection, False
                except ssl.SSLError as error:
                    _close(connection)
                    last = error
                    continue  # retry the same server without TLS
                except (OSError, smtplib.SMTPException) as error:
                    _close(connection)
                    last = error
                    break  # next address
    raise DestinationUnreachableError(
        "No receiving mail server could be reached"
        + (f" ({type(last).__name__})." if last else ".")
    )


def _cache_key(kind: str, domain: str) -> str:
    # Hashed so that cache keys (visible to anyone listing Redis) name no domain.
    return f"{_CACHE_PREFIX}{kind}:{hashlib.sha256(domain.encode()).hexdigest()[:32]}"
