"""Proxy/gateway ranges: the lookup index, the list formats, the loader, the admin."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.urls import reverse

from luxmail.models import AuditEvent
from reporting import proxy_ranges, selectors, services
from reporting.classification import EventFacts, Kind, NetworkKind, Scope, classify
from reporting.models import ProxyRange

DATA = Path(__file__).parent / "data"
APPLE = DATA / "apple_egress_sample.csv"
GATEWAYS = DATA / "gateways_sample.csv"


def load(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("load_proxy_ranges", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


# --- the index (no database) --------------------------------------------------------------


def index(*rows):
    return proxy_ranges.RangeIndex(rows)


def test_index_finds_ipv4_and_ipv6_and_prefers_the_most_specific():
    idx = index(
        ("10.0.0.0/8", "both", "gateway", "wide", ""),
        ("10.1.2.0/24", "clicks", "gateway", "narrow", "N"),
        ("2a02:26f7:b3c0:4000::/64", "opens", "privacy_proxy", "apple_mpp", "Apple"),
        ("2001:db8::1/128", "both", "gateway", "host", ""),
    )
    assert idx.size == 4
    narrow = idx.lookup("10.1.2.77")
    assert (narrow.cidr, narrow.provider, narrow.scope) == ("10.1.2.0/24", "narrow", Scope.CLICKS)
    assert idx.lookup("10.200.0.1").provider == "wide"
    apple = idx.lookup("2a02:26f7:b3c0:4000:1234::9")
    assert (apple.kind, apple.cidr) == (NetworkKind.PRIVACY_PROXY, "2a02:26f7:b3c0:4000::/64")
    assert idx.lookup("2001:db8::1").provider == "host"
    assert idx.lookup("2001:db8::2") is None
    assert idx.lookup("11.0.0.1") is None


def test_index_handles_mapped_and_malformed_addresses():
    idx = index(("192.0.2.0/24", "both", "gateway", "gw", ""))
    assert idx.lookup("::ffff:192.0.2.10").provider == "gw"
    assert idx.lookup("not an address") is None
    assert idx.lookup("") is None


def test_index_normalizes_host_bits_and_mapped_networks():
    idx = index(
        ("198.51.100.77/24", "both", "gateway", "host_bits", ""),
        ("::ffff:192.0.2.0/120", "both", "gateway", "mapped", ""),
    )
    assert idx.lookup("198.51.100.1").cidr == "198.51.100.0/24"
    assert idx.lookup("192.0.2.200").cidr == "192.0.2.0/24"
    with pytest.raises(ValueError):
        index(("300.0.0.0/8", "both", "gateway", "bad", ""))
    with pytest.raises(ValueError):
        index(("10.0.0.0/33", "both", "gateway", "bad", ""))


def test_index_first_row_wins_for_the_same_network():
    idx = index(
        ("192.0.2.0/24", "both", "gateway", "admin_choice", ""),
        ("192.0.2.0/24", "opens", "mail_proxy", "list_choice", ""),
    )
    assert idx.lookup("192.0.2.1").provider == "admin_choice"


def test_index_scales_to_an_apple_sized_list():
    rows = [
        (
            f"172.{16 + n // 65536}.{n // 256 % 256}.{n % 256}/32",
            "opens",
            "privacy_proxy",
            "apple_mpp",
            "",
        )
        for n in range(0, 200_000, 2)
    ]
    idx = proxy_ranges.RangeIndex(rows)
    assert idx.lookup("172.16.10.4").provider == "apple_mpp"
    assert idx.lookup("172.16.10.5") is None


# --- list formats -------------------------------------------------------------------------


def test_apple_egress_format():
    report = proxy_ranges.parse_apple_egress(APPLE.read_text())
    cidrs = [spec.cidr for spec in report.ranges]
    # The duplicate line is folded, the malformed one reported with its line number.
    assert len(cidrs) == 6 == len(set(cidrs))
    assert report.skipped_count == 1 and report.skipped[0].startswith("line 7:")
    first = report.ranges[0]
    assert (first.cidr, first.scope, first.kind, first.provider) == (
        "172.224.224.0/27",
        Scope.OPENS,
        NetworkKind.PRIVACY_PROXY,
        "apple_mpp",
    )
    assert first.label == "Apple egress GB GB-EN London"


def test_gateway_format():
    report = proxy_ranges.parse_gateway_csv(GATEWAYS.read_text())
    assert [(s.cidr, s.scope, s.provider) for s in report.ranges] == [
        ("198.51.100.0/24", Scope.CLICKS, "example_scanner_inc"),
        ("203.0.113.128/25", Scope.BOTH, "example_scanner_inc"),
    ]
    assert report.skipped_count == 1 and "scope must be" in report.skipped[0]


def test_seed_list_parses_cleanly():
    report = proxy_ranges.read_seed()
    assert report.skipped_count == 0
    assert len(report.ranges) >= 20
    providers = {spec.provider for spec in report.ranges}
    assert {"mimecast", "proofpoint", "barracuda", "microsoft_defender"} <= providers


# --- loader ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_load_apple_csv_prints_counts_and_is_idempotent(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        out, err = load("--apple", str(APPLE))
    assert (
        "apple_egress: 6 ranges (added 6, updated 0, removed 0, unchanged 0); 1 lines skipped"
        in out
    )
    assert "line 7" in err
    assert ProxyRange.objects.filter(source="apple_egress", scope="opens").count() == 6
    out, _ = load("--apple", str(APPLE))
    assert "(added 0, updated 0, removed 0, unchanged 6)" in out
    assert ProxyRange.objects.count() == 6
    event = AuditEvent.objects.filter(action="proxy_ranges.load").first()
    assert (
        event.details["source"] == "apple_egress"
        and event.actor_label == "command:load_proxy_ranges"
    )


@pytest.mark.django_db
def test_reload_replaces_only_its_source_and_keeps_admin_decisions(tmp_path):
    load("--apple", str(APPLE))
    load("--gateways", str(GATEWAYS), "--source", "scanners")
    ProxyRange.objects.create(cidr="192.0.2.0/24", provider="hand_made", source="admin")
    ProxyRange.objects.filter(cidr="172.224.224.0/27").update(active=False)
    smaller = tmp_path / "apple.csv"
    smaller.write_text(
        "172.224.224.0/27,GB,GB-EN,London,\n172.224.225.0/27,GB,GB-SC,Edinburgh,\n"
        "104.28.0.7/32,US,US-CA,San Jose,\n"
    )
    out, _ = load("--apple", str(smaller))
    assert "(added 1, updated 1, removed 4, unchanged 1)" in out
    apple = ProxyRange.objects.filter(source="apple_egress")
    assert set(apple.values_list("cidr", flat=True)) == {
        "172.224.224.0/27",
        "172.224.225.0/27",
        "104.28.0.7/32",
    }
    assert apple.get(cidr="104.28.0.7/32").label == "Apple egress US US-CA San Jose"
    assert apple.get(cidr="172.224.224.0/27").active is False  # the Admin's choice survives
    assert ProxyRange.objects.filter(source="scanners").count() == 2
    assert ProxyRange.objects.filter(source="admin").count() == 1


@pytest.mark.django_db
def test_an_empty_or_broken_list_never_wipes_a_source(tmp_path):
    load("--apple", str(APPLE))
    empty = tmp_path / "truncated.csv"
    empty.write_text("<html>Service Unavailable</html>\n")
    with pytest.raises(CommandError, match="no valid ranges"):
        load("--apple", str(empty))
    assert ProxyRange.objects.filter(source="apple_egress").count() == 6
    out, _ = load("--apple", str(empty), "--allow-empty")
    assert "removed 6" in out


@pytest.mark.django_db
def test_loader_refuses_the_admin_source_and_missing_arguments():
    with pytest.raises(CommandError, match="admin"):
        load("--gateways", str(GATEWAYS), "--source", "admin")
    with pytest.raises(CommandError, match="Say what to load"):
        load()
    with pytest.raises(CommandError, match="No such file"):
        load("--apple", "/nonexistent/egress.csv")


@pytest.mark.django_db
def test_seed_loads_and_reloads():
    out, _ = load("--seed")
    count = len(proxy_ranges.read_seed().ranges)
    assert f"seed: {count} ranges (added {count}," in out
    out, _ = load("--seed")
    assert f"unchanged {count})" in out


@pytest.mark.django_db
def test_apple_list_downloads_over_http(recording_server):
    recording_server.get_body = APPLE.read_bytes()
    out, _ = load("--apple", recording_server.url + "/egress-ip-ranges.csv")
    assert "added 6" in out
    assert recording_server.requests[0].path == "/egress-ip-ranges.csv"


@pytest.mark.django_db
def test_failed_download_changes_nothing(recording_server):
    recording_server.default_status = 503
    with pytest.raises(CommandError, match="Could not download"):
        load("--apple", recording_server.url + "/egress-ip-ranges.csv")
    assert not ProxyRange.objects.exists()


# --- lookups through the per-process cache -------------------------------------------------


@pytest.mark.django_db
def test_every_process_sees_changes_through_the_version_key(django_capture_on_commit_callbacks):
    # Two caches stand for two web processes sharing Redis.
    first = proxy_ranges.RangeCache(
        selectors.active_range_rows, cache, recheck_seconds=0, background=False
    )
    second = proxy_ranges.RangeCache(
        selectors.active_range_rows, cache, recheck_seconds=0, background=False
    )
    assert first.index().lookup("172.224.224.5") is None
    assert second.index().lookup("172.224.224.5") is None
    with django_capture_on_commit_callbacks(execute=True):
        load("--apple", str(APPLE))
    assert first.index().lookup("172.224.224.5").provider == "apple_mpp"
    assert second.index().lookup("172.224.224.5").provider == "apple_mpp"
    with django_capture_on_commit_callbacks(execute=True):
        ProxyRange.objects.filter(cidr="172.224.224.0/27").update(active=False)
        services.proxy_ranges_changed()
    assert first.index().lookup("172.224.224.5") is None
    with django_capture_on_commit_callbacks(execute=True):
        row = ProxyRange.objects.get(cidr="172.224.224.0/27")
        row.active = True
        row.save()  # a plain save (shell, fixtures) invalidates through the signal
    assert second.index().lookup("172.224.224.5").provider == "apple_mpp"


@pytest.mark.django_db(transaction=True)
def test_other_processes_rebuild_in_the_background_without_blocking_lookups():
    import threading

    gate = threading.Event()
    builds = []

    def slow_loader():
        builds.append(threading.current_thread().name)
        if len(builds) > 1:
            gate.wait(30)  # hold the background rebuild until the test has looked
        return selectors.active_range_rows()

    load("--apple", str(APPLE))
    other = proxy_ranges.RangeCache(slow_loader, cache, recheck_seconds=0)
    assert other.index().lookup("172.224.224.5").provider == "apple_mpp"  # first build blocks
    load("--gateways", str(GATEWAYS), "--source", "scanners")  # bumps the version on commit
    # Lookups keep answering from the previous index while a thread rebuilds.
    assert other.index().lookup("198.51.100.9") is None
    assert other.index().lookup("172.224.224.5").provider == "apple_mpp"
    gate.set()
    other.wait(timeout=30)
    assert builds[1] == "proxy-range-index"
    assert other.index().lookup("198.51.100.9").provider == "example_scanner_inc"


@pytest.mark.django_db
def test_cached_index_does_not_query_the_database(
    django_assert_num_queries, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        load("--apple", str(APPLE))
    process = proxy_ranges.RangeCache(selectors.active_range_rows, cache, recheck_seconds=60)
    process.index()
    with django_assert_num_queries(0):
        for _ in range(100):
            process.index().lookup("2a02:26f7:b3c0:4001::77")


@pytest.mark.django_db
def test_apple_mpp_open_is_classified_with_the_loaded_ranges(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        load("--apple", str(APPLE))
    ip = "2a02:26f7:b3c0:4000::abcd"
    verdict = classify(
        EventFacts(
            kind=Kind.OPEN,
            occurred_at=datetime(2026, 11, 2, tzinfo=UTC),
            user_agent="Mozilla/5.0",
            ip=ip,
            network=selectors.proxy_range_match(ip=ip),
        )
    )
    assert (verdict.label.value, verdict.reason) == ("privacy_proxy", "apple_mpp")


# --- admin ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_adds_searches_and_deactivates_ranges(
    staff_client, django_capture_on_commit_callbacks
):
    client = staff_client("Admin", is_superuser=True)
    add_url = reverse("admin:reporting_proxyrange_add")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            add_url,
            {
                "cidr": "198.51.100.77/24",  # host bits are normalized away
                "scope": "clicks",
                "kind": "gateway",
                "provider": "hospital_scanner",
                "label": "Our own link scanner",
                "source": "admin",
                "active": "on",
            },
        )
    assert response.status_code == 302, response.content[:2000]
    row = ProxyRange.objects.get(provider="hospital_scanner")
    assert row.cidr == "198.51.100.0/24"
    assert AuditEvent.objects.filter(action="proxy_range.save").exists()
    assert selectors.proxy_range_match(ip="198.51.100.9").provider == "hospital_scanner"

    changelist = reverse("admin:reporting_proxyrange_changelist")
    found = client.get(changelist, {"q": "198.51.100.9"})
    assert "Our own link scanner" in found.content.decode()

    bad = client.post(
        add_url,
        {
            "cidr": "300.1.1.0/24",
            "scope": "both",
            "kind": "gateway",
            "provider": "x",
            "source": "admin",
        },
    )
    assert bad.status_code == 200 and "CIDR" in bad.content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        client.post(changelist, {"action": "deactivate", "_selected_action": [row.pk]})
    row.refresh_from_db()
    assert row.active is False
    assert selectors.proxy_range_match(ip="198.51.100.9") is None
    assert AuditEvent.objects.filter(action="proxy_range.set_active").exists()


@pytest.mark.django_db
def test_marketers_cannot_edit_ranges(staff_client):
    client = staff_client("Marketer")
    assert client.get(reverse("admin:reporting_proxyrange_changelist")).status_code in (302, 403)


@pytest.mark.django_db
def test_demo_populate_is_idempotent(make_user):
    from reporting import demo

    admin = make_user("Admin")
    demo.populate(actor=admin)
    count = ProxyRange.objects.filter(source="seed").count()
    demo.populate(actor=admin)
    assert ProxyRange.objects.filter(source="seed").count() == count > 0
