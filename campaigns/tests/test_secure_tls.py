"""Enforced TLS (campaigns/secure/tls.py) against real aiosmtpd servers, DNS and HTTPS.

Three kinds of receiving servers stand in for remote MXes: one offering STARTTLS with a
certificate from a test CA, one without STARTTLS, and one with a self-signed
certificate. What each server *received* is asserted: nothing but EHLO/STARTTLS/QUIT
reaches a server that cannot do verified TLS.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from campaigns.secure import tls
from campaigns.secure.errors import DestinationUnreachableError, TLSRequiredError
from campaigns.secure.tls import DirectRouting, TLSStatus
from campaigns.tests.smtp_fixtures import (
    SmtpServer,
    TestCA,
    dns_server,
    https_server,
    self_signed_server_certificate,
    smtp_server,
)
from luxmail.testing import free_port

pytestmark = pytest.mark.smtp

MESSAGE = (
    b"From: news@clinic.example\r\nTo: ana@{domain}\r\nSubject: A secure message\r\n"
    b"Message-ID: <t1@clinic.example>\r\n\r\nYour A1C result is 7.2\r\n"
)
ENVELOPE_COMMANDS = {"MAIL", "RCPT", "DATA"}


def unique(label: str) -> str:
    # Capabilities are cached in Redis for hours: every test uses fresh domains.
    return f"{label}-{uuid.uuid4().hex[:10]}.test"


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return TestCA(tmp_path / "ca")


@pytest.fixture
def servers(ca: TestCA, tmp_path: Path) -> Iterator[dict[str, SmtpServer]]:
    untrusted = self_signed_server_certificate(tmp_path / "self")
    with (
        smtp_server(starttls=ca.issue_server()) as good,
        smtp_server() as plain,
        smtp_server(starttls=untrusted) as self_signed,
    ):
        yield {"good": good, "plain": plain, "untrusted": self_signed}


@pytest.fixture
def routed(settings: Any, ca: TestCA, servers: dict[str, SmtpServer]) -> dict[str, str]:
    """Domains routed to each server through LUXMAIL_MX_OVERRIDES; returns name → domain."""
    domains = {name: unique(name) for name in (*servers, "closed")}
    entries = [f"{domains[name]}={server.address}" for name, server in servers.items()]
    entries.append(f"{domains['closed']}=127.0.0.1:{free_port()}")
    settings.LUXMAIL_MX_OVERRIDES = entries
    settings.LUXMAIL_MX_CA_FILE = str(ca.ca_file)
    return domains


def test_capabilities_of_real_servers(
    routed: dict[str, str], servers: dict[str, SmtpServer]
) -> None:
    good = tls.domain_can_receive_verified_tls(routed["good"])
    assert good.status == TLSStatus.VERIFIED_TLS and good.verified
    assert good.mx_host == "127.0.0.1"

    plain = tls.domain_can_receive_verified_tls(routed["plain"])
    assert plain.status == TLSStatus.NO_TLS
    assert "does not offer STARTTLS" in plain.reason

    untrusted = tls.domain_can_receive_verified_tls(routed["untrusted"])
    assert untrusted.status == TLSStatus.UNTRUSTED_CERT
    assert "not trusted" in untrusted.reason

    closed = tls.domain_can_receive_verified_tls(routed["closed"])
    assert closed.status == TLSStatus.UNREACHABLE

    # Probing sends no envelope and no message to anybody.
    for server in servers.values():
        assert server.messages == []
        assert not ENVELOPE_COMMANDS & set(server.commands)
    assert servers["good"].commands.count("EHLO") == 2  # before and after STARTTLS
    assert servers["plain"].commands == ["EHLO"]
    assert servers["untrusted"].commands == ["EHLO"]  # the handshake failed, then nothing


def test_capability_is_cached_until_refreshed(
    routed: dict[str, str], servers: dict[str, SmtpServer]
) -> None:
    first = tls.domain_can_receive_verified_tls(routed["good"])
    probes = servers["good"].commands.count("EHLO")
    again = tls.domain_can_receive_verified_tls(routed["good"])
    assert again == first
    assert servers["good"].commands.count("EHLO") == probes  # answered from the cache

    tls.capability_forget(routed["good"])
    tls.domain_can_receive_verified_tls(routed["good"])
    assert servers["good"].commands.count("EHLO") == 2 * probes
    tls.domain_can_receive_verified_tls(routed["good"], refresh=True)
    assert servers["good"].commands.count("EHLO") == 3 * probes


def test_concurrent_workers_share_one_probe(
    routed: dict[str, str], servers: dict[str, SmtpServer]
) -> None:
    results: list[TLSStatus] = []

    def ask() -> None:
        results.append(tls.domain_can_receive_verified_tls(routed["good"]).status)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == [TLSStatus.VERIFIED_TLS] * 4
    assert servers["good"].commands.count("EHLO") == 2  # one probe, the others waited


def test_mx_connect_delivers_only_over_verified_tls(
    routed: dict[str, str], servers: dict[str, SmtpServer]
) -> None:
    connection, capability = tls.mx_connect(routed["good"])
    assert capability.verified
    try:
        connection.sendmail(
            "bounces@clinic.example",
            [f"ana@{routed['good']}"],
            MESSAGE.replace(b"{domain}", routed["good"].encode()),
        )
    finally:
        connection.quit()
    [received] = servers["good"].messages
    assert received.tls is True
    assert b"A1C" in received.data

    with pytest.raises(TLSRequiredError) as no_tls:
        tls.mx_connect(routed["plain"])
    assert no_tls.value.reason == "no_tls"
    with pytest.raises(TLSRequiredError) as untrusted:
        tls.mx_connect(routed["untrusted"])
    assert untrusted.value.reason == "untrusted_cert"
    with pytest.raises(DestinationUnreachableError):
        tls.mx_connect(routed["closed"])

    for name in ("plain", "untrusted"):
        assert servers[name].messages == []
        assert not ENVELOPE_COMMANDS & set(servers[name].commands)
    # The failed attempts updated the cached capability.
    assert tls.domain_can_receive_verified_tls(routed["plain"]).status == TLSStatus.NO_TLS


def test_certificate_for_another_host_name_is_untrusted(settings: Any, ca: TestCA) -> None:
    wrong_name = ca.issue_server(["mx.elsewhere.test"])
    with smtp_server(starttls=wrong_name) as server:
        domain = unique("wrongname")
        settings.LUXMAIL_MX_OVERRIDES = [f"{domain}={server.address}"]
        settings.LUXMAIL_MX_CA_FILE = str(ca.ca_file)
        capability = tls.domain_can_receive_verified_tls(domain)
        assert capability.status == TLSStatus.UNTRUSTED_CERT
        assert server.messages == [] and "MAIL" not in server.commands


# --- DNS: MX, implicit MX, null MX -----------------------------------------------------


def test_mx_lookup_through_dns(ca: TestCA) -> None:
    domain = unique("dns")
    mx = f"mx1.{domain}"
    with (
        smtp_server(starttls=ca.issue_server([mx])) as server,
        dns_server(
            {
                (domain, "MX"): [f"20 backup.{domain}.", f"10 {mx}."],
                (mx, "A"): ["127.0.0.1"],
                (f"backup.{domain}", "TXT"): ['"no address"'],
            }
        ) as dns,
    ):
        routing = DirectRouting(
            resolver=dns.resolver(), ca_file=str(ca.ca_file), smtp_port=server.port
        )
        targets = tls.mx_targets(domain, routing=routing)
        assert [t.host for t in targets] == [mx]  # the backup MX has no address
        assert targets[0].addresses == ("127.0.0.1",)
        capability = tls.domain_can_receive_verified_tls(domain, routing=routing)
        assert capability.status == TLSStatus.VERIFIED_TLS
        assert capability.mx_host == mx  # verified against the MX name, not the address
        assert capability.mta_sts_mode is None


def test_implicit_mx_and_null_mx_and_missing_domain(ca: TestCA) -> None:
    implicit, null, missing = unique("implicit"), unique("null"), unique("missing")
    with (
        smtp_server(starttls=ca.issue_server([implicit])) as server,
        dns_server(
            {
                (implicit, "A"): ["127.0.0.1"],
                (null, "MX"): ["0 ."],
                (null, "A"): ["127.0.0.1"],
            }
        ) as dns,
    ):
        routing = DirectRouting(
            resolver=dns.resolver(), ca_file=str(ca.ca_file), smtp_port=server.port
        )
        assert [t.host for t in tls.mx_targets(implicit, routing=routing)] == [implicit]
        assert tls.domain_can_receive_verified_tls(implicit, routing=routing).verified
        with pytest.raises(DestinationUnreachableError, match="null MX"):
            tls.mx_targets(null, routing=routing)
        assert (
            tls.domain_can_receive_verified_tls(null, routing=routing).status
            == TLSStatus.UNREACHABLE
        )
        with pytest.raises(DestinationUnreachableError, match="does not exist"):
            tls.mx_targets(missing, routing=routing)


# --- MTA-STS ---------------------------------------------------------------------------


def _policy(mode: str, *patterns: str, max_age: int = 86400) -> bytes:
    lines = [
        "version: STSv1",
        f"mode: {mode}",
        *(f"mx: {p}" for p in patterns),
        f"max_age: {max_age}",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


def test_mta_sts_enforce_policy_is_honoured(ca: TestCA) -> None:
    domain = unique("sts")
    mx = f"mx1.{domain}"
    policy_host = f"mta-sts.{domain}"
    routes: dict[str, tuple[int, str, bytes]] = {
        "/.well-known/mta-sts.txt": (200, "text/plain", _policy("enforce", "*.elsewhere.test"))
    }
    records = {
        (domain, "MX"): [f"10 {mx}."],
        (mx, "A"): ["127.0.0.1"],
        (policy_host, "A"): ["127.0.0.1"],
        (f"_mta-sts.{domain}", "TXT"): ['"v=STSv1; id=first1"'],
    }
    with (
        smtp_server(starttls=ca.issue_server([mx])) as server,
        https_server(ca.issue_server([policy_host]), routes) as web,
        dns_server(records) as dns,
    ):
        routing = DirectRouting(
            resolver=dns.resolver(),
            ca_file=str(ca.ca_file),
            smtp_port=server.port,
            https_port=web.port,
        )
        refused = tls.domain_can_receive_verified_tls(domain, routing=routing)
        assert refused.status == TLSStatus.UNTRUSTED_CERT
        assert "MTA-STS" in refused.reason and refused.mta_sts_mode == "enforce"
        assert server.commands == []  # an MX outside the policy is not even contacted
        assert web.requests == [f"{policy_host}/.well-known/mta-sts.txt"]
        with pytest.raises(TLSRequiredError) as raised:
            tls.mx_connect(domain, routing=routing)
        assert raised.value.reason == "untrusted_cert"
        assert len(web.requests) == 1  # same policy id: the cached policy is reused

        # The domain publishes a corrected policy under a new id.
        routes["/.well-known/mta-sts.txt"] = (200, "text/plain", _policy("enforce", f"*.{domain}"))
        dns.records[(f"_mta-sts.{domain}", "TXT")] = ['"v=STSv1; id=second2"']
        accepted = tls.domain_can_receive_verified_tls(domain, routing=routing, refresh=True)
        assert accepted.status == TLSStatus.VERIFIED_TLS
        assert accepted.mta_sts_mode == "enforce" and "MTA-STS enforce" in accepted.reason
        assert len(web.requests) == 2


def test_mta_sts_testing_mode_and_untrusted_policy_host(ca: TestCA, tmp_path: Path) -> None:
    domain = unique("ststest")
    mx = f"mx1.{domain}"
    policy_host = f"mta-sts.{domain}"
    records = {
        (domain, "MX"): [f"10 {mx}."],
        (mx, "A"): ["127.0.0.1"],
        (policy_host, "A"): ["127.0.0.1"],
        (f"_mta-sts.{domain}", "TXT"): ['"v=STSv1; id=t1"'],
    }
    routes = {"/.well-known/mta-sts.txt": (200, "text/plain", _policy("testing", "*.nowhere"))}
    with (
        smtp_server(starttls=ca.issue_server([mx])) as server,
        https_server(ca.issue_server([policy_host]), routes) as web,
        dns_server(records) as dns,
    ):
        routing = DirectRouting(
            resolver=dns.resolver(),
            ca_file=str(ca.ca_file),
            smtp_port=server.port,
            https_port=web.port,
        )
        policy = tls.mta_sts_policy(domain, routing=routing)
        assert policy is not None and policy.mode == "testing"
        capability = tls.domain_can_receive_verified_tls(domain, routing=routing)
        # testing mode reports only; LuxMail still requires verified TLS, which holds.
        assert capability.verified and capability.mta_sts_mode == "testing"

    # A policy host with an untrusted certificate yields no policy (RFC 8461 §3.3).
    other = unique("stsbad")
    records = {
        (f"mta-sts.{other}", "A"): ["127.0.0.1"],
        (f"_mta-sts.{other}", "TXT"): ['"v=STSv1; id=b1"'],
    }
    untrusted = self_signed_server_certificate(tmp_path, [f"mta-sts.{other}"])
    with https_server(untrusted, routes) as web, dns_server(records) as dns:
        routing = DirectRouting(
            resolver=dns.resolver(), ca_file=str(ca.ca_file), https_port=web.port
        )
        assert tls.mta_sts_policy(other, routing=routing) is None
        assert web.requests == []


def test_mta_sts_fetch_rules(ca: TestCA) -> None:
    domain = unique("fetch")
    policy_host = f"mta-sts.{domain}"
    records = {(policy_host, "A"): ["127.0.0.1"]}
    for status, content_type, body, error in [
        (301, "text/plain", b"https://elsewhere.test/p.txt", "HTTP 301"),
        (200, "text/html", _policy("enforce", "mx.test"), "text/plain"),
        (404, "text/plain", b"", "HTTP 404"),
    ]:
        routes = {"/.well-known/mta-sts.txt": (status, content_type, body)}
        with (
            https_server(ca.issue_server([policy_host]), routes) as web,
            dns_server(records) as dns,
        ):
            routing = DirectRouting(
                resolver=dns.resolver(), ca_file=str(ca.ca_file), https_port=web.port
            )
            with pytest.raises(ValueError, match=error):
                tls.fetch_mta_sts_policy(domain, routing=routing)


# --- pure parsing ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        (["v=STSv1; id=20160831085700Z;"], "20160831085700Z"),
        (["v=STSv1;id=abc"], "abc"),
        (["v=spf1 -all", "v=STSv1; id=abc"], "abc"),
        (["v=STSv1; id=abc", "v=STSv1; id=def"], None),  # two records: no policy
        (["v=STSv1; id=bad-id!"], None),
        (["v=STSv1"], None),
        ([], None),
    ],
)
def test_parse_mta_sts_txt(texts: list[str], expected: str | None) -> None:
    assert tls.parse_mta_sts_txt(texts) == expected


def test_parse_mta_sts_policy() -> None:
    policy = tls.parse_mta_sts_policy(
        "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\n"
        "mx: backupmx.example.com\nmax_age: 604800\n",
        policy_id="x1",
    )
    assert policy.mode == "enforce"
    assert policy.mx == ("mail.example.com", "*.example.net", "backupmx.example.com")
    assert policy.max_age == 604800
    assert policy.allows("mx1.example.net") and not policy.allows("a.b.example.net")
    assert (
        tls.parse_mta_sts_policy("version: STSv1\nmode: none\nmax_age: 99999999999\n").max_age
        == tls.MTA_STS_MAX_AGE
    )
    for bad in (
        "version: STSv2\nmode: enforce\nmx: a\nmax_age: 1\n",
        "version: STSv1\nmode: strict\nmx: a\nmax_age: 1\n",
        "version: STSv1\nmode: enforce\nmax_age: 1\n",
        "version: STSv1\nmode: enforce\nmx: a\n",
        "version: STSv1\nmode: enforce\nmx: a\nmax_age: soon\n",
    ):
        with pytest.raises(ValueError):
            tls.parse_mta_sts_policy(bad)


@pytest.mark.parametrize(
    ("pattern", "host", "matches"),
    [
        ("mail.example.com", "mail.example.com", True),
        ("mail.example.com", "MAIL.example.com.", True),
        ("*.example.com", "mx1.example.com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "a.mx1.example.com", False),
        ("mail.example.com", "mx.example.com", False),
    ],
)
def test_mx_pattern_matches(pattern: str, host: str, matches: bool) -> None:
    assert tls.mx_pattern_matches(pattern, host) is matches


def test_parse_mx_overrides() -> None:
    assert tls.parse_mx_overrides("Example.org=127.0.0.1:2525, v6.test=[::1]:2526") == {
        "example.org": ("127.0.0.1", 2525),
        "v6.test": ("::1", 2526),
    }
    assert tls.parse_mx_overrides(["a.test=mx.local:25"]) == {"a.test": ("mx.local", 25)}
    for bad in ("example.org", "example.org=127.0.0.1", "=1.2.3.4:25", "a.test=h:70000"):
        with pytest.raises(ImproperlyConfigured):
            tls.parse_mx_overrides([bad])


def test_domain_of() -> None:
    assert tls.domain_of("Ana@Example.ORG") == "example.org"
    assert tls.domain_of("x@bücher.example") == "xn--bcher-kva.example"
    with pytest.raises(ValueError):
        tls.domain_of("not-an-address")
