"""Demo data for ``make run``: ~200 fictional patients, consents, lists and segments.

Idempotent: contacts are upserted by email (a re-run changes nothing but dates that
follow today), and consents, the suppression, lists, custom fields and segments are
created only when missing. All names come from Faker with a fixed seed; addresses use
reserved example domains and phone numbers the fictional 555-01xx range. No SSNs.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from django.db import transaction
from django.utils import timezone

from contacts import services
from contacts.models import Consent, ContactList, CustomField, Segment, Suppression
from contacts.services import saved_views, tags
from contacts.upsert import email_bidx
from luxmail import demo
from luxmail.actors import Actor, user_of

PATIENTS = 200
DOMAINS = ["example.org", "example.com"]
SEED = 2026
ZIPS = {"021": 40, "022": 15, "024": 10, "100": 15, "112": 10, "606": 10}
DIABETES = ["E11.9", "E11.9", "E11.65", "E11.22"]
OTHER = [("I10", 0.3), ("E78.5", 0.2), ("J45.909", 0.08), ("F32.9", 0.07), ("E66.9", 0.12)]
MEDS = {
    "E11": "Metformin 500 mg",
    "I10": "Lisinopril 10 mg",
    "E78": "Atorvastatin 20 mg",
    "J45": "Albuterol inhaler",
    "F32": "Sertraline 50 mg",
}
PROVIDERS = ["Dr. Amara Okafor", "Dr. Luis Ortega", "Dr. Mei Chen", "Dr. Sarah Goldberg"]
PLANS = {
    "commercial": ["Blue Cross PPO", "Harvard Pilgrim HMO"],
    "medicare": ["Medicare Part B", "Medicare Advantage"],
    "medicaid": ["MassHealth Standard"],
    "self_pay": ["Self-pay"],
}
SEGMENTS = {
    "Diabetics over 50 near 021xx": {
        "all": [
            {"field": "condition", "op": "eq", "value": "E11"},
            {"field": "age", "op": "gte", "value": 50},
            {"field": "zip3", "op": "eq", "value": "021"},
        ]
    },
    "Overdue for a visit": {
        "any": [
            {"field": "last_visit", "op": "more_than_days_ago", "value": 365},
            {"field": "journey_stage", "op": "eq", "value": "overdue"},
        ]
    },
    "Spanish-speaking patients with hypertension": {
        "all": [
            {"field": "language", "op": "eq", "value": "es"},
            {"field": "condition", "op": "eq", "value": "I10"},
        ]
    },
}


# Fictional names for the demo patients: a fixed list, so that the shipped code needs no
# fake-data library (Faker is a test-only dependency).
FIRST_FEMALE = [
    "Mary",
    "Patricia",
    "Jennifer",
    "Linda",
    "Elizabeth",
    "Barbara",
    "Susan",
    "Jessica",
    "Sarah",
    "Karen",
    "Lisa",
    "Nancy",
    "Betty",
    "Sandra",
    "Margaret",
    "Ashley",
    "Kimberly",
    "Emily",
    "Donna",
    "Michelle",
    "Carol",
    "Amanda",
    "Melissa",
    "Deborah",
    "Maria",
    "Rosa",
    "Ana",
    "Mei",
    "Guerline",
    "Fatima",
]
FIRST_MALE = [
    "James",
    "Robert",
    "John",
    "Michael",
    "David",
    "William",
    "Richard",
    "Joseph",
    "Thomas",
    "Christopher",
    "Charles",
    "Daniel",
    "Matthew",
    "Anthony",
    "Mark",
    "Donald",
    "Steven",
    "Paul",
    "Andrew",
    "Joshua",
    "Kenneth",
    "Kevin",
    "Brian",
    "George",
    "Jose",
    "Carlos",
    "Wei",
    "Jean",
    "Ahmed",
    "Samuel",
]
LAST_NAMES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Chen",
    "Wang",
    "Silva",
    "Pierre",
    "Oliveira",
]


def _patients(today: dt.date) -> list[dict[str, Any]]:
    rng = random.Random(SEED)  # noqa: S311 - fictional demo data, not security
    rows = []
    for index in range(PATIENTS):
        sex = rng.choices(["female", "male", "other"], weights=[52, 47, 1])[0]
        first = rng.choice(FIRST_FEMALE if sex == "female" else FIRST_MALE)
        last = rng.choice(LAST_NAMES)
        age = max(18, min(95, int(rng.gauss(52, 17))))
        birth = today - dt.timedelta(days=age * 365 + rng.randrange(365))
        conditions = [rng.choice(DIABETES)] if rng.random() < 0.05 + age / 300 else []
        conditions += [code for code, p in OTHER if rng.random() < p]
        insurance = "medicare" if age >= 65 else rng.choice(["commercial"] * 3 + ["medicaid"])
        if rng.random() < 0.05:
            insurance = "self_pay"
        last_visit = today - dt.timedelta(days=int(rng.expovariate(1 / 220)) % 900 + 1)
        overdue = (today - last_visit).days > 365
        zip3 = rng.choices(list(ZIPS), weights=list(ZIPS.values()))[0]
        rows.append(
            {
                "email": f"{first}.{last}.{index}@{rng.choice(DOMAINS)}".lower(),
                "first_name": first,
                "last_name": last,
                "phone": f"+1617555{100 + index % 100:04d}",
                "external_id": f"demo-{index:04d}",
                "time_zone": "America/New_York" if zip3 != "606" else "America/Chicago",
                "birth_date": birth,
                "sex": sex,
                "language": rng.choices(["en", "es", "pt", "zh", "ht"], [75, 15, 4, 3, 3])[0],
                "zip_code": f"{zip3}{rng.randrange(10, 99):02d}",
                "conditions": conditions,
                "medications": sorted({MEDS[c[:3]] for c in conditions if c[:3] in MEDS}),
                "insurance_type": insurance,
                "insurance_plan": rng.choice(PLANS[insurance]),
                "primary_provider": rng.choice(PROVIDERS),
                "last_visit": last_visit,
                "next_appointment": today + dt.timedelta(days=rng.randrange(3, 120))
                if rng.random() < 0.35
                else None,
                "journey_stage": "overdue"
                if overdue
                else rng.choices(["active", "new", "at_risk"], [75, 15, 10])[0],
                "custom": {"care_program": rng.choice(["Diabetes education", "Heart health", ""])},
            }
        )
    return rows


@demo.register
def populate(*, actor: Actor) -> None:
    """Create or refresh the demo contacts and their consents, lists and segments."""
    today = timezone.localdate()
    if not CustomField.objects.filter(key="care_program").exists():
        services.custom_field_create(
            key="care_program",
            label="Care program",
            kind="choice",
            choices=["Diabetes education", "Heart health", "Healthy aging"],
            phi=True,
            actor=actor,
        )
    rows = _patients(today)
    result = services.contacts_bulk_upsert(rows=rows, actor=actor, source="demo")
    if not result.ok:  # the generator and the validators disagree: fail loudly
        raise RuntimeError(f"demo data invalid: {result.errors[0].as_dict()}")
    ids = result.contact_ids
    rng = random.Random(SEED)  # noqa: S311 - fictional demo data, not security
    with transaction.atomic():
        have = set(Consent.objects.filter(contact_id__in=ids).values_list("contact_id", "purpose"))
        for pk in ids:
            # Draw everything up front so a re-run follows the same random sequence.
            marketing, phi_marketing = rng.random() < 0.85, rng.random() < 0.55
            source = rng.choice(["web_form", "paper", "ehr"])
            wanted = ["marketing"] * marketing + ["phi_marketing"] * phi_marketing
            for purpose in wanted:
                if (pk, purpose) not in have:
                    services.consent_grant_many(
                        contact_ids=[pk],
                        purpose=purpose,
                        source=source,
                        evidence_ref=f"demo-consent-{pk}-{purpose}",
                        actor=actor,
                    )
    suppressed = rows[7]["email"]
    if not Suppression.objects.filter(
        email_bidx=email_bidx(suppressed), removed_at__isnull=True
    ).exists():
        services.suppression_add(
            email=suppressed, reason="unsubscribe", note="demo: unsubscribed", actor=actor
        )
    for name, members in [
        ("Spring health fair RSVPs", ids[:40:2]),
        ("Patient newsletter", ids[::3]),
    ]:
        contact_list = ContactList.objects.filter(name=name).first()
        if contact_list is None:
            contact_list = services.contact_list_create(
                name=name, description="Demo list", actor=actor
            )
        services.list_members_add(contact_list=contact_list, contact_ids=members, actor=actor)
    for name, rules in SEGMENTS.items():
        if not Segment.objects.filter(name=name).exists():
            services.segment_create(name=name, rules=rules, description="Demo segment", actor=actor)
    _tags_and_saved_view(ids, actor)


def _tags_and_saved_view(ids: list[int], actor: Actor) -> None:
    """Tags on some patients and a saved view of the fair RSVPs to call back (issue 20)."""
    call_back = tags.tag_get_or_create(name="Needs call-back", actor=actor)
    tags.contacts_tag(tag=call_back, contact_ids=ids[:40:6], actor=actor)
    volunteer = tags.tag_get_or_create(name="Volunteer", actor=actor)
    tags.contacts_tag(tag=volunteer, contact_ids=ids[5:60:11], actor=actor)
    owner = user_of(actor)
    fair = ContactList.objects.filter(name="Spring health fair RSVPs").first()
    if owner is not None and fair is not None:
        saved_views.saved_view_save(
            owner=owner,
            name="Fair RSVPs to call back",
            params={"contact_list": str(fair.pk), "tag": str(call_back.pk)},
        )
