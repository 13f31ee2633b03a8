"""Proxy and gateway ranges: the per-process lookup index and the list formats.

The tracking endpoints look up every client address, so lookups never touch the
database: each process keeps a :class:`RangeIndex` of the active ranges, built once
per *version*. Any change to ``ProxyRange`` rows bumps a version key in the shared
cache (Redis); a process compares its version with the shared one at most every
``recheck_seconds`` and rebuilds when they differ.

The index stores networks bucketed by prefix length as sorted integer arrays
(4 bytes per IPv4 range, 8 per IPv6 range up to /64), so Apple's ~hundreds of
thousands of egress ranges cost a few megabytes per process; a lookup is one binary
search per distinct prefix length, most specific match first.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import logging
import socket
import threading
import time
import uuid
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from django.core.cache.backends.base import BaseCache
from django.db import connection

from reporting.classification import NetworkKind, NetworkMatch, Scope

logger = logging.getLogger(__name__)

VERSION_CACHE_KEY = "reporting:proxy_ranges:version"
SEED_PATH = Path(__file__).resolve().parent / "data" / "proxy_ranges.csv"
APPLE_EGRESS_URL = "https://mask-api.icloud.com/egress-ip-ranges.csv"
# Microsoft 365 endpoints web service ("Microsoft 365 IP Address and URL web service",
# learn.microsoft.com); the client request id is any GUID, made fresh per request.
MICROSOFT_ENDPOINTS_URL = "https://endpoints.office.com/endpoints/worldwide?clientrequestid={id}"
_SNAPSHOT_MARK = "# snapshot:"


@dataclass(frozen=True, slots=True)
class RangeSpec:
    """One parsed line of a range list (before it becomes a ``ProxyRange`` row)."""

    cidr: str
    scope: Scope
    kind: NetworkKind
    provider: str
    label: str


@dataclass(frozen=True, slots=True)
class _Attrs:
    scope: Scope
    kind: NetworkKind
    provider: str
    label: str


class _Bucket:
    """Sorted network keys of one prefix length, with the attributes index of each."""

    __slots__ = ("attrs", "keys")

    def __init__(self, typecode: str | None, items: dict[int, int]):
        ordered = sorted(items)
        # IPv6 prefixes longer than /64 do not fit an unsigned 64-bit array: plain list.
        self.keys: Sequence[int] = array(typecode, ordered) if typecode else ordered
        self.attrs = array("I", (items[key] for key in ordered))

    def find(self, key: int) -> int | None:
        position = bisect_left(self.keys, key)
        if position < len(self.keys) and self.keys[position] == key:
            return int(self.attrs[position])
        return None


def _address_value(address: str) -> tuple[int, int] | None:
    """``(version, integer)`` of an address; IPv4-mapped IPv6 counts as IPv4."""
    try:
        if ":" in address:
            value = int.from_bytes(socket.inet_pton(socket.AF_INET6, address), "big")
            if value >> 32 == 0xFFFF:
                return 4, value & 0xFFFFFFFF
            return 6, value
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, address), "big")
    except (OSError, ValueError):
        return None


def _network_key(cidr: str) -> tuple[int, int, int]:
    """``(version, prefix length, network bits)`` of a CIDR, host bits dropped.

    ``socket.inet_pton`` parses an order of magnitude faster than ``ipaddress``, which
    matters when Apple's list (hundreds of thousands of rows) is indexed.
    """
    address, _, length = cidr.strip().partition("/")
    parsed = _address_value(address)
    if parsed is None:
        raise ValueError(f"not a network: {cidr!r}")
    version, value = parsed
    bits = 32 if version == 4 else 128
    prefixlen = int(length) if length else bits
    if version == 4 and ":" in address:
        prefixlen -= 96  # ::ffff:a.b.c.d/120 → a.b.c.d/24
    if not 0 <= prefixlen <= bits:
        raise ValueError(f"bad prefix length: {cidr!r}")
    return version, prefixlen, value >> (bits - prefixlen)


def _format(version: int, prefixlen: int, key: int) -> str:
    if version == 4:
        packed = (key << (32 - prefixlen)).to_bytes(4, "big")
        return f"{socket.inet_ntop(socket.AF_INET, packed)}/{prefixlen}"
    packed = (key << (128 - prefixlen)).to_bytes(16, "big")
    return f"{socket.inet_ntop(socket.AF_INET6, packed)}/{prefixlen}"


class RangeIndex:
    """Longest-prefix match of an address against a set of networks."""

    def __init__(self, rows: Iterable[tuple[str, str, str, str, str]]):
        attrs: list[_Attrs] = []
        attr_ids: dict[tuple[str, str, str, str], int] = {}
        pending: dict[tuple[int, int], dict[int, int]] = {}
        count = 0
        for cidr, scope, kind, provider, label in rows:
            version, prefixlen, key = _network_key(cidr)
            attr_id = attr_ids.get((scope, kind, provider, label))
            if attr_id is None:
                attr_id = attr_ids[(scope, kind, provider, label)] = len(attrs)
                attrs.append(_Attrs(Scope(scope), NetworkKind(kind), provider, label))
            # Rows come in priority order: the first row for a network wins.
            bucket = pending.get((version, prefixlen))
            if bucket is None:
                bucket = pending[(version, prefixlen)] = {}
            bucket.setdefault(key, attr_id)
            count += 1
        self._attrs = attrs
        self._buckets: dict[int, list[tuple[int, _Bucket]]] = {4: [], 6: []}
        for (version, prefixlen), items in pending.items():
            typecode = "I" if version == 4 else ("Q" if prefixlen <= 64 else None)
            self._buckets[version].append((prefixlen, _Bucket(typecode, items)))
        for buckets in self._buckets.values():
            buckets.sort(key=lambda pair: pair[0], reverse=True)
        self.size = count

    def lookup(self, address: str) -> NetworkMatch | None:
        parsed = _address_value(address.strip())
        if parsed is None:
            return None
        version, value = parsed
        bits = 32 if version == 4 else 128
        for prefixlen, bucket in self._buckets[version]:
            key = value >> (bits - prefixlen)
            found = bucket.find(key)
            if found is not None:
                item = self._attrs[found]
                cidr = _format(version, prefixlen, key)
                return NetworkMatch(cidr, item.scope, item.kind, item.provider, item.label)
        return None


class RangeCache:
    """The per-process index, rebuilt when the shared version changes.

    ``loader`` returns the active rows in priority order; ``cache`` is a Django cache.
    The first build blocks. Later rebuilds triggered by *another* process's change run
    in a background thread while lookups keep using the previous index (Apple's list
    takes seconds to index); a change made by this process (:meth:`expire`) is
    rebuilt before the next lookup, so the process that changed a range sees it at
    once.
    """

    def __init__(
        self,
        loader: Callable[[], Iterable[tuple[str, str, str, str, str]]],
        cache: BaseCache,
        *,
        recheck_seconds: float = 5.0,
        background: bool = True,
    ):
        self._loader = loader
        self._cache = cache
        self._recheck = recheck_seconds
        self._background = background
        self._lock = threading.Lock()
        self._index: RangeIndex | None = None
        self._version: str | None = None
        self._checked_at = 0.0
        self._building: threading.Thread | None = None
        self._sync_next = False

    def _shared_version(self) -> str | None:
        """The shared version, or None when the shared cache (Redis) does not answer."""
        try:
            version = self._cache.get(VERSION_CACHE_KEY)
            if version is None:
                # Lost (cache flushed or first start): set one, so every process reloads once.
                self._cache.add(VERSION_CACHE_KEY, uuid.uuid4().hex, None)
                version = self._cache.get(VERSION_CACHE_KEY)
        except Exception:  # any cache backend's connection error
            logger.warning("Proxy ranges: shared cache unavailable; using the database's ranges")
            return None
        return str(version)

    def _build_in_background(self, version: str, replaces: str | None) -> None:

        try:
            index = RangeIndex(self._loader())
            with self._lock:
                # A synchronous rebuild in the meantime has newer data: keep it.
                if self._version == replaces:
                    self._index, self._version = index, version
        finally:
            connection.close()  # this thread's own database connection
            self._building = None

    def index(self) -> RangeIndex:
        current = self._index
        if current is not None and time.monotonic() - self._checked_at < self._recheck:
            return current
        with self._lock:
            version = self._shared_version()
            self._checked_at = time.monotonic()
            if version is None:
                # Without the shared cache nobody can say whether the ranges changed: keep
                # the index there is, or build one from the database (the source of truth)
                # under a local version, which the shared one replaces once it answers.
                if self._index is None or self._sync_next:
                    self._sync_next = False
                    self._index = RangeIndex(self._loader())
                    self._version = f"local-{uuid.uuid4().hex}"
                return self._index
            if self._index is not None and version == self._version:
                return self._index
            if self._index is not None and self._background and not self._sync_next:
                if self._building is None:
                    self._building = threading.Thread(
                        target=self._build_in_background,
                        args=(version, self._version),
                        name="proxy-range-index",
                        daemon=True,
                    )
                    self._building.start()
                return self._index
            self._sync_next = False
            self._index, self._version = RangeIndex(self._loader()), version
            return self._index

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a background rebuild to finish (tests, management commands)."""
        building = self._building
        if building is not None:
            building.join(timeout)

    def expire(self) -> None:
        """This process changed the ranges: compare versions and rebuild before the next lookup."""
        self._checked_at = 0.0
        self._sync_next = True


def bump_version(cache: BaseCache) -> None:
    cache.set(VERSION_CACHE_KEY, uuid.uuid4().hex, None)


# --- list formats -------------------------------------------------------------------------


@dataclass
class ParseReport:
    ranges: list[RangeSpec]
    skipped: list[str]  # "line N: why" for the first few bad lines
    skipped_count: int


def _normalize(cidr: str) -> str:
    return str(ipaddress.ip_network(cidr.strip(), strict=False))


def _parse(
    lines: Iterable[list[str]],
    build: Callable[[list[str]], RangeSpec | None],
    max_errors: int = 20,
) -> ParseReport:
    seen: dict[str, RangeSpec] = {}
    skipped: list[str] = []
    skipped_count = 0
    for number, row in enumerate(lines, start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        try:
            spec = build(row)
        except (ValueError, IndexError) as error:
            skipped_count += 1
            if len(skipped) < max_errors:
                skipped.append(f"line {number}: {error}")
            continue
        if spec is not None:
            seen.setdefault(spec.cidr, spec)
    return ParseReport(list(seen.values()), skipped, skipped_count)


def parse_apple_egress(text: str) -> ParseReport:
    """Apple's egress list: ``ip_prefix,country,region,city,`` per line (scope opens)."""

    def build(row: list[str]) -> RangeSpec:
        cidr = _normalize(row[0])
        place = " ".join(part.strip() for part in row[1:4] if part.strip())
        return RangeSpec(
            cidr=cidr,
            scope=Scope.OPENS,
            kind=NetworkKind.PRIVACY_PROXY,
            provider="apple_mpp",
            label=f"Apple egress {place}".strip()[:200],
        )

    return _parse(csv.reader(io.StringIO(text)), build)


def _scope(value: str) -> Scope:
    try:
        return Scope(value.strip().lower())
    except ValueError:
        raise ValueError(f"scope must be opens, clicks or both, not {value.strip()!r}") from None


def _kind(value: str) -> NetworkKind:
    try:
        return NetworkKind(value.strip().lower() or NetworkKind.GATEWAY.value)
    except ValueError:
        kinds = ", ".join(k.value for k in NetworkKind)
        raise ValueError(f"kind must be one of {kinds}, not {value.strip()!r}") from None


def _provider(label: str) -> str:
    slug = "".join(c if c.isalnum() else "_" for c in label.strip().lower()).strip("_")
    return "_".join(part for part in slug.split("_") if part)[:64] or "gateway"


def parse_gateway_csv(text: str) -> ParseReport:
    """Security gateway lists: ``cidr,scope,label`` (header optional).

    An optional fourth column ``provider`` and fifth ``kind`` (gateway, mail_proxy,
    privacy_proxy) are used by the shipped seed list; without them the provider is
    derived from the label and the kind is ``gateway``.
    """

    def build(row: list[str]) -> RangeSpec | None:
        if row[0].strip().lower() == "cidr":
            return None  # header
        if len(row) < 3:
            raise ValueError("expected cidr,scope,label")
        label = row[2].strip()
        provider = row[3].strip() if len(row) > 3 and row[3].strip() else _provider(label)
        return RangeSpec(
            cidr=_normalize(row[0]),
            scope=_scope(row[1]),
            kind=_kind(row[4] if len(row) > 4 else ""),
            provider=_provider(provider),
            label=label[:200],
        )

    return _parse(csv.reader(io.StringIO(text)), build)


def parse_microsoft_endpoints(text: str) -> ParseReport:
    """Microsoft 365's endpoints JSON: the Exchange Online ranges, as gateway / clicks.

    Mail servers do not browse: a click from Exchange Online's networks is Defender for
    Office 365 Safe Links. Scoped to clicks so Outlook's own image loading is not caught.
    """
    try:
        entries = json.loads(text)
    except ValueError as error:
        return ParseReport([], [f"not JSON: {error}"[:200]], 1)
    if not isinstance(entries, list):
        return ParseReport([], ["expected a JSON list of endpoint sets"], 1)
    cidrs: list[list[str]] = []
    for entry in entries:
        if isinstance(entry, dict) and entry.get("serviceArea") == "Exchange":
            cidrs.extend([str(ip)] for ip in entry.get("ips") or [])

    def build(row: list[str]) -> RangeSpec:
        return RangeSpec(
            cidr=_normalize(row[0]),
            scope=Scope.CLICKS,
            kind=NetworkKind.GATEWAY,
            provider="microsoft_defender",
            label="Microsoft Exchange Online (endpoints web service)",
        )

    return _parse(cidrs, build)


def published_date(text: str) -> str:
    """The ``# snapshot: YYYY-MM-DD`` date a shipped list carries, or ""."""
    for line in text.splitlines()[:20]:
        if line.lower().startswith(_SNAPSHOT_MARK):
            return line[len(_SNAPSHOT_MARK) :].strip()[:40]
    return ""


@dataclass(frozen=True, slots=True)
class VendorList:
    """A vendor's published list that ``manage.py proxy_ranges_refresh`` loads."""

    source: str
    url: str
    parse: Callable[[str], ParseReport]
    documentation: str

    def default_location(self) -> str:
        return self.url.format(id=uuid.uuid4())


VENDOR_LISTS: dict[str, VendorList] = {
    "apple_egress": VendorList(
        "apple_egress",
        APPLE_EGRESS_URL,
        parse_apple_egress,
        "developer.apple.com: Prepare your network or web server for iCloud Private Relay",
    ),
    "microsoft_exchange": VendorList(
        "microsoft_exchange",
        MICROSOFT_ENDPOINTS_URL,
        parse_microsoft_endpoints,
        "learn.microsoft.com: Microsoft 365 IP Address and URL web service",
    ),
}


def read_seed() -> ParseReport:
    return parse_gateway_csv(SEED_PATH.read_text(encoding="utf-8"))


def seed_published() -> str:
    return published_date(SEED_PATH.read_text(encoding="utf-8"))


def iter_rows(specs: Iterable[RangeSpec]) -> Iterator[tuple[str, str, str, str, str]]:
    for spec in specs:
        yield spec.cidr, spec.scope.value, spec.kind.value, spec.provider, spec.label
