"""Issue 17, item 4: an audit trail an auditor can read — filters (actor, action, object,
days, PHI only), keyset pages, readable actions and details, and a streamed CSV/JSON
export of the filtered range that is itself audited."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from django.urls import reverse
from django.utils import timezone

from luxmail import audit, roles, selectors
from luxmail.models import AuditEvent
from luxmail.templatetags.audit_details import action_text, detail_lines, target_text

pytestmark = pytest.mark.django_db


def _seed() -> None:
    audit.record("auth.login", actor="username:alice", details={"factor": "password"})
    audit.record(
        "phi.access",
        actor="username:bob",
        phi=True,
        target_type="contacts.contact",
        target_id="11111111-2222",
        details={"purpose": "contact.view"},
    )
    audit.record(
        "campaign.approve",
        actor="username:carol",
        target_type="campaigns.campaign",
        target_id="abc-123",
        details={"template_phi_fields": ["phi.age"], "recipients": 3},
    )
    audit.record("settings.change", actor="username:=HYPERLINK(1)", details={"changed": ["x"]})


def _actions(**filters) -> list[str]:
    return list(selectors.audit_events(**filters).values_list("action", flat=True))


def test_filters_by_actor_action_object_day_and_phi() -> None:
    _seed()
    assert _actions(actor="alice") == ["auth.login"]
    assert _actions(action="campaign.") == ["campaign.approve"]
    assert _actions(target="campaigns.campaign") == ["campaign.approve"]
    assert _actions(target="campaigns.campaign:abc-123") == ["campaign.approve"]
    assert _actions(target="11111111-2222") == ["phi.access"]
    assert _actions(phi_only=True) == ["phi.access"]
    today = timezone.localdate()
    assert len(_actions(date_from=today, date_to=today)) == 4
    assert _actions(date_to=today - dt.timedelta(days=1)) == []
    assert _actions(date_from=today + dt.timedelta(days=1)) == []


def test_keyset_pages_walk_back_and_forth() -> None:
    for n in range(120):
        audit.record("test.event", details={"n": n})
    events = selectors.audit_events(action="test.")
    first = selectors.audit_page(events)
    assert len(first.events) == 50 and first.newer is None and first.older is not None
    second = selectors.audit_page(events, before=first.older)
    third = selectors.audit_page(events, before=second.older)
    assert len(third.events) == 20 and third.older is None
    seen = [e.details["n"] for page in (first, second, third) for e in page.events]
    assert seen == list(range(119, -1, -1))
    back = selectors.audit_page(events, after=third.newer)
    assert [e.pk for e in back.events] == [e.pk for e in second.events]
    assert selectors.audit_page(events, after=second.newer).newer is None


def test_actions_targets_and_details_read_as_words() -> None:
    assert action_text("campaign.approve") == "PHI campaign approved"
    assert action_text("journey.discard_draft") == "Journey: discard draft"
    assert action_text("odd") == "Odd"
    assert target_text("campaigns.campaign", "3f2a9c1d-aaaa-bbbb") == "campaign 3f2a9c1d…"
    assert detail_lines({"template_phi_fields": ["phi.age"]}) == ["template PHI fields: phi.age"]


def test_audit_page_filters_pages_and_links(staff_client) -> None:
    _seed()
    client = staff_client(roles.COMPLIANCE_OFFICER)
    page = client.get(reverse("audit"), {"phi_only": "on"}).content.decode()
    assert "PHI decrypted" in page and "PHI campaign approved" not in page
    page = client.get(reverse("audit"), {"target": "campaigns.campaign:abc-123"}).content.decode()
    assert "PHI campaign approved" in page and "template PHI fields: phi.age" in page
    assert "Last checkpoint" in page and "Last verification" in page
    assert 'href="/audit/export/?target=campaigns.campaign%3Aabc-123&amp;format=csv"' in page


@pytest.mark.parametrize(
    "query",
    [
        {"date_from": "2026-13-45"},
        {"date_from": "2026-12-06", "date_to": "2026-12-01"},
        {"before": "'; DROP TABLE x"},
        {"after": "9" * 40},
        {"actor": "x" * 5000},
        {"target": "a:" * 100},
    ],
)
def test_hostile_filters_get_a_friendly_page(staff_client, query) -> None:
    _seed()
    response = staff_client(roles.COMPLIANCE_OFFICER).get(reverse("audit"), query)
    assert response.status_code == 200


def test_csv_export_streams_the_filtered_range_and_is_audited(staff_client) -> None:
    _seed()
    client = staff_client(roles.COMPLIANCE_OFFICER)
    response = client.get(reverse("audit_export"), {"action": "settings.", "format": "csv"})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["action"] for r in rows] == ["settings.change"]
    assert rows[0]["actor"] == "username:=HYPERLINK(1)"  # only a leading = runs
    assert rows[0]["details"] == "changed: x" and rows[0]["description"]
    event = AuditEvent.objects.get(action="audit.export")
    assert event.details == {"format": "csv", "filters": {"action": "settings."}}
    assert event.actor_label == client.user.get_username()


def test_csv_cells_that_would_run_as_formulas_are_neutralized(staff_client) -> None:
    audit.record("=cmd|' /C calc'!A0", actor="username:x")
    client = staff_client(roles.COMPLIANCE_OFFICER)
    response = client.get(reverse("audit_export"), {"format": "csv", "actor": "username:x"})
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0]["action"].startswith("'=")


def test_json_export_carries_the_hashes(staff_client) -> None:
    _seed()
    client = staff_client(roles.COMPLIANCE_OFFICER)
    response = client.get(reverse("audit_export"), {"format": "json", "phi_only": "on"})
    data = json.loads(b"".join(response.streaming_content))
    assert [d["action"] for d in data] == ["phi.access"]
    event = AuditEvent.objects.get(action="phi.access")
    assert data[0]["hash"] == event.hash and data[0]["prev_hash"] == event.prev_hash
    assert data[0]["details_json"] == {"purpose": "contact.view"}


def test_export_refusals(staff_client) -> None:
    officer = staff_client(roles.COMPLIANCE_OFFICER)
    bad = officer.get(reverse("audit_export"), {"format": "xml"}, follow=True)
    assert bad.status_code == 200 and "Unknown export format" in bad.content.decode()
    bad_dates = officer.get(reverse("audit_export"), {"date_from": "soon"}, follow=True)
    assert "Fix the filters" in bad_dates.content.decode()
    assert not AuditEvent.objects.filter(action="audit.export").exists()
    marketer = staff_client(roles.MARKETER)
    assert marketer.get(reverse("audit_export"), {"format": "csv"}).status_code == 403
