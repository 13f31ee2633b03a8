"""Whether each link of a campaign reaches a page: an HTTP HEAD (GET when HEAD is not
allowed) run by a Celery worker, the answer cached per URL.

Bounded: at most :data:`MAX_LINKS` links per campaign, :data:`TIMEOUT_SECONDS` per
request, :data:`MAX_REDIRECTS` redirects, no response body read. The host is resolved
once and the connection goes to that address (no second lookup an attacker's DNS could
answer differently); with ``LUXMAIL_LINK_CHECK=http`` only public addresses are
contacted, so a template cannot make the worker probe the internal network.
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from django.core.cache import cache

from luxmail import conf

MAX_LINKS = 50
MAX_URL_LENGTH = 2048
TIMEOUT_SECONDS = 5.0
MAX_REDIRECTS = 3
USER_AGENT = "LuxMail link check (pre-send)"


@dataclass(frozen=True)
class LinkResult:
    ok: bool
    detail: str
    checked: bool = True  # False: refused to check (private address), not a broken link

    def as_cache(self) -> tuple[bool, str, bool]:
        return (self.ok, self.detail, self.checked)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            for name, value in attrs:
                if name == "href" and value:
                    self.hrefs.append(value.strip())


def links_in(html: str, *, skip_prefixes: tuple[str, ...] = ()) -> list[str]:
    """The distinct http(s) link targets of rendered ``html``, in order, at most MAX_LINKS."""
    parser = _Links()
    parser.feed(html)
    parser.close()
    seen: dict[str, None] = {}
    for href in parser.hrefs:
        if urlsplit(href).scheme.lower() not in ("http", "https"):
            continue
        if len(href) > MAX_URL_LENGTH or href.startswith(skip_prefixes):
            continue
        seen.setdefault(href, None)
    return list(seen)[:MAX_LINKS]


def _key(url: str) -> str:
    return "presend:link:" + hashlib.sha256(url.encode()).hexdigest()


def cached(url: str) -> LinkResult | None:
    value = cache.get(_key(url))
    return None if value is None else LinkResult(*value)


def remember(url: str, result: LinkResult) -> None:
    cache.set(_key(url), result.as_cache(), conf.presend_cache_seconds())


def _public(address: str) -> bool:
    return ipaddress.ip_address(address.split("%")[0]).is_global


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a fixed address, with the certificate checked for the URL's host name."""

    def __init__(self, host: str, address: str, port: int, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]  # set by HTTPSConnection


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, address: str, port: int, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


def _request(url: str, method: str) -> tuple[int, str | None] | LinkResult:
    parts = urlsplit(url)
    host = parts.hostname or ""
    https = parts.scheme.lower() == "https"
    try:
        port = parts.port or (443 if https else 80)
    except ValueError:
        return LinkResult(False, "the address has an invalid port")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return LinkResult(False, f"the host {host} does not exist (DNS)")
    address = str(infos[0][4][0])
    if conf.link_check() == "http" and not all(_public(str(i[4][0])) for i in infos):
        return LinkResult(False, f"{host} is a private address; not checked", checked=False)
    connection_class = _PinnedHTTPS if https else _PinnedHTTP
    connection = connection_class(host, address, port, TIMEOUT_SECONDS)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    try:
        connection.request(method, path, headers={"User-Agent": USER_AGENT, "Accept": "*/*"})
        response = connection.getresponse()
        return response.status, response.getheader("Location")
    except ssl.SSLError:
        return LinkResult(False, "its TLS certificate is not valid")
    except TimeoutError:
        return LinkResult(False, f"no answer within {TIMEOUT_SECONDS:g} s")
    except (OSError, http.client.HTTPException):
        return LinkResult(False, "the server refused or dropped the connection")
    finally:
        connection.close()


def probe(url: str) -> LinkResult:
    """Check one URL now (worker side). Never raises for network trouble."""
    current = url
    for _hop in range(MAX_REDIRECTS + 1):
        outcome = _request(current, "HEAD")
        if isinstance(outcome, tuple) and outcome[0] in (405, 501):
            outcome = _request(current, "GET")
        if isinstance(outcome, LinkResult):
            return outcome
        status, location = outcome
        if status in (301, 302, 303, 307, 308) and location:
            current = urljoin(current, location)
            if urlsplit(current).scheme.lower() not in ("http", "https"):
                return LinkResult(False, "it redirects to a non-web address")
            continue
        if status >= 400:
            return LinkResult(False, f"the server answers HTTP {status}")
        return LinkResult(True, f"HTTP {status}")
    return LinkResult(False, f"more than {MAX_REDIRECTS} redirects")
