"""The database never holds a plaintext PHI value (scan of every text/JSON column)."""

import re

import pytest
from django.db import connection

from contacts import segments, selectors, services
from contacts.models import Contact
from luxmail.models import AuditEvent

pytestmark = [pytest.mark.django_db]

# Distinctive values: none of them can appear in a table by accident. A short value made
# of digits (a ZIP code) or a date near today could: timestamps (today's date, microsecond
# digits), hex digests and base64 ciphertext hold such runs by chance. So the dates lie far
# from any day the suite runs, the ZIP is a ZIP+4 found as a whole, and its 5-digit part
# only where it stands alone (SHORT_NEEDLES), never inside a longer run of letters/digits.
PHI = {
    "email": "zebulon.quartermaine@examplehealth.org",
    "first_name": "Zebulonius",
    "last_name": "Quartermaine",
    "phone": "+16175550199",
    "birth_date": "1957-08-19",
    "zip_code": "02476-8153",
    "conditions": "E11.649; I10",
    "medications": "Glipizidexr 5 mg",
    "insurance_plan": "Harborview Platinum PPO",
    "primary_provider": "Dr. Philomena Stroud",
    "last_visit": "1994-07-23",
    "next_appointment": "2093-11-27",
    "language": "pt-br",
    "custom": {"care_program": "renal", "allergy": "Peanutallergen"},
}
NEEDLES = [
    "zebulon",
    "Zebulonius",
    "Quartermaine",
    "6175550199",
    "1957-08-19",
    "02476-8153",
    "E11.649",
    "Glipizidexr",
    "Harborview",
    "Philomena",
    "1994-07-23",
    "2093-11-27",
    "Peanutallergen",
]
SHORT_NEEDLES = ["02476"]


CONTROL = "examplehealth.org"


def _found(needle: str, text: str) -> bool:
    if needle in SHORT_NEEDLES:
        return re.search(rf"(?<![0-9a-z]){needle}(?![0-9a-z])", text) is not None
    return needle.lower() in text


def test_probes_are_found_only_where_they_stand_alone():
    assert _found("02476", "zip 02476 ")
    assert _found("02476", '{"zip": "02476"}')
    assert not _found("02476", "2026-12-06 17:20:31.024761+00:00")
    assert not _found("02476", "9f3a02476bc1")


def _columns():
    """Every (table, column) of every table in the database (not only known models)."""
    found = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            for column in connection.introspection.get_table_description(cursor, table):
                found.append((table, column.name))
    return found


def test_no_table_contains_plaintext_phi(admin):
    services.custom_field_create(
        key="care_program",
        label="Care program",
        kind="choice",
        choices=["Cardio", "Renal"],
        actor=admin,
    )
    services.custom_field_create(key="allergy", label="Allergy", kind="text", actor=admin)
    contact = services.contact_create(data=PHI, actor=admin)
    services.consent_grant(contact=contact, purpose="phi_marketing", source="paper", actor=admin)
    services.suppression_add(
        email=PHI["email"], reason="manual", note="asked by phone", actor=admin
    )
    services.contact_update(contact=contact, data={"journey_stage": "overdue"}, actor=admin)
    selectors.contact_phi(contact=contact, actor=admin)
    services.segment_count_rules(
        rules={"all": [{"field": "age", "op": "gte", "value": 60}]}, actor=admin
    )
    assert segments.matching({"field": "condition", "op": "eq", "value": "E11.6"}).count() == 1

    hits = []
    with connection.cursor() as cursor:
        for table, column in _columns():
            cursor.execute(f'SELECT "{column}" FROM "{table}"')  # noqa: S608
            for (value,) in cursor.fetchall():
                if value is None:
                    continue
                text = (
                    bytes(value).decode("latin-1")
                    if isinstance(value, bytes | memoryview)
                    else str(value)
                )
                text = text.lower()
                hits += [
                    (table, column, n)
                    for n in [*NEEDLES, *SHORT_NEEDLES, CONTROL]
                    if _found(n, text)
                ]
    # The scanner works: the plain recipient domain (not PHI) is found where it belongs.
    assert ("contacts_contact", "domain", CONTROL) in hits
    assert [hit for hit in hits if hit[2] != CONTROL] == []
    assert Contact.objects.count() == 1
    assert AuditEvent.objects.filter(action="contact.view_phi").count() == 1
