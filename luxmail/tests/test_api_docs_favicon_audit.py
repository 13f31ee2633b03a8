"""Issue 12, item 12: /api/docs/ runs under the CSP from vendored assets, a favicon is
served, and audit details read as text.

The browser half (Swagger UI actually renders operations) is
``tests/test_browser_api_docs.py``.
"""

import re
from html.parser import HTMLParser

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import reverse

from luxmail import audit
from luxmail.models import AuditEvent
from luxmail.templatetags.audit_details import detail_lines

pytestmark = pytest.mark.django_db


class Assets(HTMLParser):
    """Every script, stylesheet and icon a page references, and its inline code."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self.inline_styles = 0
        self._tag = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self._tag = tag
        if tag == "script" and a.get("src"):
            self.urls.append(a["src"])
        elif tag == "link" and a.get("href"):
            self.urls.append(a["href"])
        elif tag == "img" and a.get("src"):
            self.urls.append(a["src"])
        if "style" in a:
            self.inline_styles += 1

    def handle_data(self, data):
        if self._tag == "script" and data.strip():
            self.inline_scripts += 1
        if self._tag == "style" and data.strip():
            self.inline_styles += 1

    def handle_endtag(self, tag):
        self._tag = ""


def _assets(response) -> Assets:
    parser = Assets()
    parser.feed(response.content.decode())
    return parser


def _fetch(client, url):
    response = client.get(url)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response, body


def test_api_docs_load_only_same_origin_assets_under_the_csp(staff_client):
    client = staff_client("Admin")
    page = client.get(reverse("api-docs"))
    assert page.status_code == 200
    csp = page["Content-Security-Policy"]
    for directive in ("script-src 'self'", "style-src 'self'"):
        assert directive in csp
    assert "unsafe-inline" not in csp and "cdn" not in csp
    found = _assets(page)
    assert found.inline_scripts == 0 and found.inline_styles == 0
    assert any("swagger-ui-bundle" in url for url in found.urls)
    assert any("swagger-ui.css" in url for url in found.urls)
    for url in found.urls:
        assert url.startswith("/") and not url.startswith("//"), url  # same origin
        response, body = _fetch(client, url)
        assert response.status_code == 200, url
        assert body, url
    # The init script is a static file that reads the schema URL from the page.
    assert f'data-schema-url="{reverse("api-schema")}"' in page.content.decode()
    schema = client.get(reverse("api-schema"))
    assert schema.status_code == 200


def test_vendored_swagger_ui_is_complete_and_licensed():
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui.LICENSE.txt"):
        assert finders.find(f"vendor/{name}"), name
    versions = open(finders.find("vendor/VERSIONS")).read()  # noqa: SIM115
    assert re.search(r"^swagger-ui-dist@\d+\.\d+\.\d+ swagger-ui-bundle\.js", versions, re.M)


def test_favicon_is_linked_and_served(staff_client):
    anonymous = Client()
    response = anonymous.get("/favicon.ico", follow=True)
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert body[:4] == b"\x00\x00\x01\x00"  # an ICO file
    page = staff_client("Admin").get(reverse("dashboard"))
    icons = [url for url in _assets(page).urls if "favicon" in url]
    assert icons
    for url in icons:
        assert Client().get(url).status_code == 200


def test_audit_details_read_as_key_value_lines(staff_client):
    client = staff_client("Compliance Officer")
    audit.record(
        "test.details",
        actor=None,
        details={
            "purpose": "contact.edit",
            "contacts": [3, 4],
            "after": {"role": "Admin", "active": True},
            "note": None,
        },
    )
    expected = {
        "purpose: contact.edit",
        "contacts: 3, 4",
        "after.role: Admin",
        "after.active: yes",
        "note: —",
    }
    page = client.get(reverse("audit")).content.decode()
    cell = page.split("<code>test.details</code>")[1].split('class="audit-details">')[1]
    assert set(cell.split("</small>")[0].split("<br>")) == expected  # jsonb orders keys
    assert "{&#x27;purpose&#x27;" not in page and "{'purpose'" not in page

    event = AuditEvent.objects.get(action="test.details")
    admin = client.get(reverse("admin:luxmail_auditevent_change", args=[event.pk]))
    assert admin.status_code == 200
    text = admin.content.decode()
    assert all(f"{line}<br>" in text or f"{line}</div>" in text for line in expected), text
    assert '"purpose"' not in text


def test_detail_lines_handle_any_json():
    assert detail_lines({}) == [] and detail_lines(None) == []
    assert detail_lines({"a": {"b": {"c": 1}}, "d": []}) == ["a.b.c: 1", "d: —"]
    assert detail_lines({"x": [{"k": "v"}], "y": False}) == ["x: k: v", "y: no"]
    assert detail_lines(["raw"]) == ["raw"]
