"""SPF, DKIM and DMARC of a sender identity's domains, looked up with dnspython.

The resolver is ``LUXMAIL_DNS_RESOLVER`` (``host:port``; empty: the system's), with a
short lifetime so a dead resolver costs seconds, not a request timeout. Answers are
cached (``LUXMAIL_PRESEND_CACHE_SECONDS``) so reloading the review page does not
query again. Only public DNS data is read; nothing here touches PHI.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import dns.exception
import dns.resolver
from django.core.cache import cache
from publicsuffixlist import PublicSuffixList

from campaigns.models import SenderIdentity
from campaigns.presend.items import CheckItem, Verdict
from luxmail import conf

LIFETIME_SECONDS = 3.0
MAX_TXT_BYTES = 8192
# Cached answers of failed lookups are kept shorter: a record just published shows soon.
_MISSING_TTL = 60


class LookupFailed(Exception):
    """The resolver did not answer (timeout, SERVFAIL): the record is unknown, not absent."""


def _resolver() -> dns.resolver.Resolver:
    configured = conf.dns_resolver()
    if configured is None:
        resolver = dns.resolver.Resolver()
    else:
        host, port = configured
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [host]
        resolver.port = port
    resolver.lifetime = LIFETIME_SECONDS
    resolver.timeout = LIFETIME_SECONDS
    return resolver


def txt_records(name: str) -> list[str]:
    """The TXT strings at ``name`` (each record's chunks joined); [] when none exist.

    Raises :class:`LookupFailed` when the resolver gives no definite answer.
    """
    key = "presend:txt:" + hashlib.sha256(name.lower().encode()).hexdigest()
    cached = cache.get(key)
    if isinstance(cached, str):
        raise LookupFailed(cached)
    if cached is not None:
        return list(cached)
    try:
        return _lookup(name, key)
    except LookupFailed as error:
        # A dead resolver is not asked again at once: each lookup may cost the lifetime.
        cache.set(key, str(error), _MISSING_TTL)
        raise


def _lookup(name: str, key: str) -> list[str]:
    try:
        answer = _resolver().resolve(name, "TXT", raise_on_no_answer=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoNameservers) as error:
        if isinstance(error, dns.resolver.NoNameservers):
            raise LookupFailed("the DNS servers refused or failed the query") from None
        cache.set(key, [], _MISSING_TTL)
        return []
    except (dns.exception.Timeout, dns.resolver.LifetimeTimeout):
        raise LookupFailed("the DNS server did not answer in time") from None
    except dns.exception.DNSException as error:
        raise LookupFailed(f"the lookup failed ({type(error).__name__})") from None
    records = []
    for rdata in answer.rrset or []:
        joined = b"".join(rdata.strings)[:MAX_TXT_BYTES]
        records.append(joined.decode("utf-8", "replace"))
    cache.set(key, records, conf.presend_cache_seconds() if records else _MISSING_TTL)
    return records


def _domain(address: str) -> str:
    return address.rpartition("@")[2].strip().lower().rstrip(".")


def envelope_domain(sender: SenderIdentity) -> str:
    """The domain SPF is checked for: the VERP return path's (``delivery`` uses the same)."""
    return (sender.bounce_domain or sender.dkim_domain or _domain(sender.from_email)).lower()


def _unknown(key: str, label: str, error: LookupFailed) -> CheckItem:
    return CheckItem(key, label, Verdict.WARN, f"Could not be checked: {error}.")


def check_spf(sender: SenderIdentity, fix_url: str) -> CheckItem:
    domain = envelope_domain(sender)
    label = "SPF record"
    try:
        records = [r for r in txt_records(domain) if r.lower().startswith("v=spf1")]
    except LookupFailed as error:
        return _unknown("spf", label, error)
    if not records:
        return CheckItem(
            "spf",
            label,
            Verdict.FAIL,
            f"{domain} publishes no SPF record: receivers cannot tell our relay may send for it.",
            fix_url,
            "Sender identity's DNS records",
        )
    if len(records) > 1:
        return CheckItem(
            "spf",
            label,
            Verdict.FAIL,
            f"{domain} publishes {len(records)} SPF records; receivers treat that as an error "
            "(keep exactly one).",
            fix_url,
            "Sender identity's DNS records",
        )
    policy = records[0].split()[-1].lower()
    if policy in ("+all", "all"):
        return CheckItem(
            "spf", label, Verdict.WARN, f"{domain}'s SPF record ends in '+all': anyone may send.",
            fix_url, "Sender identity's DNS records"
        )  # fmt: skip
    return CheckItem("spf", label, Verdict.PASS, f"{domain} publishes an SPF record.")


def _dkim_tags(record: str) -> dict[str, str]:
    tags = {}
    for part in record.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            tags[name.strip().lower()] = "".join(value.split())
    return tags


def check_dkim(sender: SenderIdentity, fix_url: str) -> CheckItem:
    label = "DKIM key published"
    if not sender.has_dkim:
        return CheckItem(
            "dkim",
            label,
            Verdict.WARN if sender.allow_without_dkim else Verdict.FAIL,
            "The sender identity has no DKIM key, so messages go out unsigned.",
            fix_url,
            "Generate a DKIM key",
        )
    name = f"{sender.dkim_selector}._domainkey.{sender.dkim_domain}"
    try:
        records = [r for r in txt_records(name) if "p=" in r]
    except LookupFailed as error:
        return _unknown("dkim", label, error)
    if not records:
        return CheckItem(
            "dkim",
            label,
            Verdict.FAIL,
            f"No DKIM key is published at {name}: receivers cannot verify the signature.",
            fix_url,
            "Publish the TXT record",
        )
    ours = "".join(sender.dkim_public_key.split())
    if any(_dkim_tags(r).get("p") == ours for r in records):
        return CheckItem("dkim", label, Verdict.PASS, f"{name} publishes this identity's key.")
    return CheckItem(
        "dkim",
        label,
        Verdict.FAIL,
        f"The key published at {name} is not this identity's key (an old key, or a typo): "
        "signatures will fail.",
        fix_url,
        "Publish the current TXT record",
    )


@lru_cache(maxsize=1)
def _public_suffixes() -> PublicSuffixList:
    """The Public Suffix List bundled with the ``publicsuffixlist`` package (read once;
    never fetched at run time)."""
    return PublicSuffixList()


def organizational_domain(domain: str) -> str:
    """The organizational domain of ``domain`` (RFC 7489 §3.2): one label below its
    public suffix — ``example.co.uk`` for ``news.example.co.uk``. A name that is itself a
    public suffix is its own."""
    return _public_suffixes().privatesuffix(domain.lower().rstrip(".")) or domain


def _dmarc_record(domain: str) -> tuple[str, str] | None:
    """The DMARC record for ``domain``: its own, else its organizational domain's."""
    candidates = [domain]
    parent = organizational_domain(domain)
    if parent != domain:
        candidates.append(parent)
    for candidate in candidates:
        found = [r for r in txt_records(f"_dmarc.{candidate}") if r.lower().startswith("v=dmarc1")]
        if found:
            return candidate, found[0]
    return None


def check_dmarc(sender: SenderIdentity, fix_url: str) -> CheckItem:
    domain = _domain(sender.from_email)
    label = "DMARC policy"
    try:
        found = _dmarc_record(domain)
    except LookupFailed as error:
        return _unknown("dmarc", label, error)
    if found is None:
        return CheckItem(
            "dmarc",
            label,
            Verdict.FAIL,
            f"{domain} publishes no DMARC record (_dmarc.{domain}); Gmail and Yahoo require one "
            "from bulk senders.",
            fix_url,
            "Sender identity's DNS records",
        )
    where, record = found
    policy = _dkim_tags(record).get("p", "").lower()
    if policy == "none":
        return CheckItem(
            "dmarc",
            label,
            Verdict.WARN,
            f"{where}'s DMARC policy is p=none (monitoring only).",
            fix_url,
            "Sender identity's DNS records",
        )
    return CheckItem(
        "dmarc", label, Verdict.PASS, f"{where} publishes a DMARC policy (p={policy})."
    )
