"""The contact edit form round-trips every field (issue 12, item 8).

A contact with every field of the form set is opened for editing: each stored value
must be the rendered initial value, and posting the form back exactly as the browser
would (every rendered input, unchanged) must change nothing — the plain columns and the
encrypted PHI, read back through ``luxmail.crypto`` as the code does.
"""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser
from typing import Any

import pytest
from django.urls import reverse

from contacts import services
from contacts.attributes import PROFILE_ATTRIBUTES
from contacts.models import Contact, ContactProfile
from contacts.selectors import IDENTITY_PHI
from luxmail import crypto, roles
from luxmail.models import AuditEvent

pytestmark = pytest.mark.django_db

CUSTOM = [
    {"key": "tier", "label": "Tier", "kind": "choice", "phi": False, "choices": ["Gold", "Silver"]},
    {"key": "crm_note", "label": "CRM note", "kind": "text", "phi": False},
    {"key": "visits", "label": "Visits", "kind": "number", "phi": False},
    {"key": "hba1c", "label": "HbA1c", "kind": "number", "phi": True},
    {"key": "screened_on", "label": "Screened on", "kind": "date", "phi": True},
    {"key": "allergy", "label": "Allergy", "kind": "text", "phi": True},
]

FULL = {
    "email": "maria.lopez@example.org",
    "first_name": "Maria",
    "last_name": "Lopez",
    "phone": "+16175550100",
    "external_id": "ehr-4711",
    "time_zone": "America/Chicago",
    "birth_date": "1961-04-02",
    "sex": "female",
    "language": "es",
    "zip_code": "02139",
    "conditions": "E11.9, I10",
    "medications": "Metformin 500 mg; Lisinopril 10 mg",
    "insurance_type": "medicare",
    "insurance_plan": "Plan B Gold",
    "primary_provider": "Dr. Ana Ruiz",
    "last_visit": "2026-01-15",
    "next_appointment": "2026-04-20",
    "journey_stage": "active",
    "custom.tier": "Silver",
    "custom.crm_note": "prefers mornings",
    "custom.visits": "7",
    "custom.hba1c": "6.8",
    "custom.screened_on": "2025-11-03",
    "custom.allergy": "penicillin",
}


class FormFields(HTMLParser):
    """What a browser would submit for the first ``<form method="post">`` of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self._in_form = False
        self._select: str | None = None
        self._first_option: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("method", "").lower() == "post":
            self._in_form = True
        if not self._in_form:
            return
        if tag == "input" and "name" in a and a.get("type") not in ("submit", "button"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            self.values[a["name"]] = a.get("value", "")
        elif tag == "select":
            self._select, self._first_option = a["name"], None
        elif tag == "option" and self._select:
            if self._first_option is None:
                self._first_option = a.get("value", "")
                self.values.setdefault(self._select, self._first_option)
            if "selected" in a:
                self.values[self._select] = a.get("value", "")
        elif tag == "textarea":
            self._textarea = a["name"]
            self.values[self._textarea] = ""

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.values[self._textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "form":
            self._in_form = False


def rendered_form(response: Any) -> dict[str, str]:
    assert response.status_code == 200
    parser = FormFields()
    parser.feed(response.content.decode())
    return parser.values


def stored(contact: Contact) -> dict[str, Any]:
    """Every value of a contact straight from the database, PHI decrypted by the crypto module."""
    contact = Contact.objects.get(pk=contact.pk)
    profile = ContactProfile.objects.get(pk=contact.pk)
    access = crypto.phi_access(actor=None, purpose="test.roundtrip")
    return {
        "external_id": contact.external_id,
        "time_zone": contact.time_zone,
        "status": contact.status,
        **crypto.reveal_many(contact, IDENTITY_PHI, access=access),
        **crypto.reveal_many(profile, PROFILE_ATTRIBUTES, access=access),
        "custom_phi": crypto.reveal(profile, "custom_phi", access=access),
        "custom": profile.custom,
        "envelopes": {name: bytes(getattr(contact, name) or b"") for name in IDENTITY_PHI}
        | {
            name: bytes(getattr(profile, name) or b"")
            for name in (*PROFILE_ATTRIBUTES, "custom_phi")
        },
    }


@pytest.fixture
def full_contact(admin):
    for field in CUSTOM:
        services.custom_field_create(actor=admin, **field)
    return services.contact_create(data=FULL, actor=admin)


def test_every_field_is_rendered_and_survives_an_unchanged_save(staff_client, full_contact):
    client = staff_client(roles.PHI_MARKETER)
    # Every field the form offers is part of this test: a new form field must be added here.
    form_names = set(rendered_form(client.get(reverse("contacts:create")))) - {
        "csrfmiddlewaretoken"
    }
    assert form_names == set(FULL), "FULL must set every field of the contact form"
    before = stored(full_contact)
    assert before["external_id"] == "ehr-4711" and before["time_zone"] == "America/Chicago"
    assert before["medications"] == ["Lisinopril 10 mg", "Metformin 500 mg"]  # kept sorted
    assert before["next_appointment"] == dt.date(2026, 4, 20)
    assert before["custom_phi"] == {
        "allergy": "penicillin",
        "hba1c": "6.8",
        "screened_on": "2025-11-03",
    }

    url = reverse("contacts:edit", args=[full_contact.uuid])
    shown = rendered_form(client.get(url))
    expected = {**FULL, "medications": "Lisinopril 10 mg; Metformin 500 mg"}
    for name, value in expected.items():
        assert shown.get(name) == value, f"{name}: form shows {shown.get(name)!r}, stored {value!r}"

    updates = AuditEvent.objects.filter(action="contact.update").count()
    response = client.post(url, shown)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert AuditEvent.objects.filter(action="contact.update").count() == updates
    after = stored(full_contact)
    assert after == before


def test_unchanged_save_without_phi_rights_keeps_every_value(staff_client, full_contact):
    client = staff_client(roles.MARKETER)
    url = reverse("contacts:edit", args=[full_contact.uuid])
    before = stored(full_contact)
    shown = rendered_form(client.get(url))
    assert shown["external_id"] == "ehr-4711" and shown["time_zone"] == "America/Chicago"
    assert shown["custom.tier"] == "Silver" and shown["custom.crm_note"] == "prefers mornings"
    assert shown["custom.visits"] == "7"
    assert shown["email"] == "" and "birth_date" not in shown and "custom.allergy" not in shown
    response = client.post(url, shown)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert stored(full_contact) == before
