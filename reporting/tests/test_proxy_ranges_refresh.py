"""``manage.py proxy_ranges_refresh``: vendor lists from a local file or a (local) URL.

No Internet here: the "vendor" is a file or a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from reporting import proxy_ranges, selectors
from reporting.classification import NetworkKind, Scope
from reporting.models import ProxyRange, ProxyRangeList

DATA = Path(__file__).parent / "data"
APPLE = DATA / "apple_egress_sample.csv"
MICROSOFT = [
    {"id": 1, "serviceArea": "Exchange", "ips": ["40.92.0.0/15", "2a01:111:f400::/48"]},
    {"id": 2, "serviceArea": "SharePoint", "ips": ["13.107.136.0/22"]},
    {"id": 3, "serviceArea": "Exchange", "urls": ["outlook.office.com"]},
]


def refresh(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("proxy_ranges_refresh", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def vendor_server() -> Iterator[str]:
    """A local HTTP server publishing the Microsoft list (and a 500 for /broken)."""
    body = json.dumps(MICROSOFT).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/broken"):
                self.send_error(500)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_microsoft_endpoints_parser_keeps_exchange_ips_as_click_gateways():
    report = proxy_ranges.parse_microsoft_endpoints(json.dumps(MICROSOFT))
    assert [spec.cidr for spec in report.ranges] == ["40.92.0.0/15", "2a01:111:f400::/48"]
    assert {(s.scope, s.kind) for s in report.ranges} == {(Scope.CLICKS, NetworkKind.GATEWAY)}
    assert proxy_ranges.parse_microsoft_endpoints("<html>error</html>").ranges == []
    assert proxy_ranges.parse_microsoft_endpoints('{"not": "a list"}').ranges == []


@pytest.mark.django_db
def test_refresh_from_a_file_and_a_local_url_records_the_date(vendor_server):
    out, err = refresh(
        "--from",
        f"apple_egress={APPLE}",
        "--from",
        f"microsoft_exchange={vendor_server}/endpoints?clientrequestid=abc",
    )
    assert "apple_egress:" in out and "microsoft_exchange: 2 ranges" in out, (out, err)
    lists = {row.source: row for row in ProxyRangeList.objects.all()}
    assert set(lists) == {"apple_egress", "microsoft_exchange"}
    assert lists["microsoft_exchange"].ranges == 2
    # The query (Microsoft's client request id) is not kept.
    assert lists["microsoft_exchange"].location == f"{vendor_server}/endpoints"
    assert lists["apple_egress"].location == str(APPLE)
    assert ProxyRange.objects.filter(source="microsoft_exchange", scope="clicks").count() == 2
    first = lists["apple_egress"].refreshed_at
    refresh("--only", "apple_egress", "--from", f"apple_egress={APPLE}")
    again = ProxyRangeList.objects.get(source="apple_egress")
    assert again.refreshed_at > first  # checked again, even though nothing changed


@pytest.mark.django_db
def test_one_vendor_failing_does_not_stop_the_others(vendor_server):
    with pytest.raises(CommandError, match="Not refreshed: microsoft_exchange"):
        refresh(
            "--from",
            f"apple_egress={APPLE}",
            "--from",
            f"microsoft_exchange={vendor_server}/broken",
        )
    assert ProxyRangeList.objects.filter(source="apple_egress").exists()
    assert not ProxyRangeList.objects.filter(source="microsoft_exchange").exists()


@pytest.mark.django_db
def test_refresh_refuses_unknown_lists_and_bad_arguments():
    with pytest.raises(CommandError, match="Unknown list"):
        refresh("--only", "nonsense")
    with pytest.raises(CommandError, match="LIST=FILE_OR_URL"):
        refresh("--from", "apple_egress")


@pytest.mark.django_db
def test_seed_load_records_the_snapshot_date():
    call_command("load_proxy_ranges", "--seed", stdout=io.StringIO())
    seed = ProxyRangeList.objects.get(source="seed")
    assert seed.published == proxy_ranges.seed_published() != ""


@pytest.mark.django_db
def test_admin_lists_ranges_with_their_list_date(staff_client):
    call_command("load_proxy_ranges", "--seed", stdout=io.StringIO())
    client = staff_client("Admin", is_superuser=True)
    response = client.get(reverse("admin:reporting_proxyrange_changelist"))
    assert response.status_code == 200
    refreshed = ProxyRangeList.objects.get(source="seed").refreshed_at
    assert f"{refreshed:%Y-%m-%d}" in response.content.decode()
    assert "List refreshed" in response.content.decode()
    listed = client.get(reverse("admin:reporting_proxyrangelist_changelist"))
    assert listed.status_code == 200 and "seed" in listed.content.decode()
    row = selectors.proxy_ranges_with_list_date(ProxyRange.objects.all()).first()
    assert row is not None and row.list_refreshed == refreshed
