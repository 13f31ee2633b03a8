"""The compliance dashboard (issue 17 §8): findings with their fix links, CSV export."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from luxmail import breakglass, roles
from luxmail.api import services as api_services
from luxmail.models import ApiKey, AuditEvent, User
from reporting import compliance

pytestmark = pytest.mark.django_db


def _items(sections):
    return {f.item: f for s in sections for f in s.findings}


def test_findings_cover_factors_inactivity_keys_and_break_glass(make_user):
    admin = make_user(roles.ADMIN)
    no_factor = make_user(roles.MARKETER, totp=False, username="nofactor")
    old = make_user(roles.VIEWER, username="sleeper")
    User.objects.filter(pk=old.pk).update(last_login=timezone.now() - timedelta(days=120))
    issued = api_services.api_key_create(
        name="old sync", scopes=["contacts:read"], expires_at=None, actor=admin
    )
    ApiKey.objects.filter(pk=issued.key.pk).update(created_at=timezone.now() - timedelta(days=200))
    grant = breakglass.break_glass_request(
        user=make_user(roles.MARKETER, username="oncall"),
        justification="Emergency recall needs contact details now",
        minutes=30,
    )
    items = _items(compliance.compliance_sections())
    missing = items["No second factor: nofactor"]
    assert missing.status == "warn" and missing.link == f"/staff/{no_factor.pk}/"
    assert items["Inactive: sleeper"].link == f"/staff/{old.pk}/"
    assert any(i.startswith("API key unused for 90 days: old sync") for i in items)
    assert items["Marketer: second factor / passkey"].value.startswith("1/2 (50 %)")
    assert items[f"Open break-glass grant #{grant.pk}: oncall"].link == "/staff/break-glass/"
    assert items["Last audit chain verification"].value == "never"
    assert "Encryption key ring (primary key" in " ".join(items)


def test_page_and_csv_export_for_compliance_officers_only(staff_client, make_user):
    officer = staff_client(roles.COMPLIANCE_OFFICER)
    make_user(roles.MARKETER, totp=False, username="=cmd|calc")
    page = officer.get("/reports/compliance/")
    assert page.status_code == 200
    body = page.content.decode()
    for key in ("mfa", "accounts", "keys", "audit", "delivery", "break_glass"):
        assert f'id="compliance-{key}"' in body
    export = officer.get("/reports/compliance/export.csv")
    assert export["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(export.content.decode())))
    assert rows[0] == ["section", "item", "value", "status", "fix", "link"]
    assert any(r[1] == "No second factor: =cmd|calc" for r in rows)
    assert AuditEvent.objects.filter(action="compliance.export").exists()
    assert staff_client(roles.MARKETER).get("/reports/compliance/").status_code == 403


def test_csv_cells_that_look_like_formulas_are_neutralised():
    section = compliance.Section("x", "X", [compliance.Finding("=HYPERLINK(1)", "+1", "ok")])
    rows = list(csv.reader(io.StringIO(compliance.compliance_csv([section]))))
    assert rows[1][1] == "'=HYPERLINK(1)" and rows[1][2] == "'+1"
