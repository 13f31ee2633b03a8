"""Demo data: realistic, valid, idempotent, and the demo segments match somebody."""

import pytest

from contacts import demo, segments
from contacts.models import Consent, Contact, ContactList, Segment, Suppression

pytestmark = [pytest.mark.django_db]


def test_populate_is_idempotent_and_segments_match(admin):
    demo.populate(actor=admin)
    counts = (
        Contact.objects.count(),
        Consent.objects.count(),
        ContactList.objects.count(),
        Segment.objects.count(),
        Suppression.objects.count(),
    )
    assert counts[0] == demo.PATIENTS
    demo.populate(actor=admin)
    assert (
        Contact.objects.count(),
        Consent.objects.count(),
        ContactList.objects.count(),
        Segment.objects.count(),
        Suppression.objects.count(),
    ) == counts
    for segment in Segment.objects.all():
        assert segments.count(segment.rules) > 0, segment.name
