"""Demo data: realistic, valid, idempotent, and the demo segments match somebody."""

import pytest
from django.utils import timezone

from contacts import demo, search, segments
from contacts.models import (
    Consent,
    Contact,
    ContactList,
    ContactTag,
    SavedView,
    Segment,
    Suppression,
)

pytestmark = [pytest.mark.django_db]


def test_populate_is_idempotent_and_segments_match(admin):
    demo.populate(actor=admin)
    counts = (
        Contact.objects.count(),
        Consent.objects.count(),
        ContactList.objects.count(),
        Segment.objects.count(),
        Suppression.objects.count(),
        ContactTag.objects.count(),
        SavedView.objects.count(),
    )
    assert counts[0] == demo.PATIENTS
    assert counts[-2] > 0 and counts[-1] == 1
    demo.populate(actor=admin)
    assert (
        Contact.objects.count(),
        Consent.objects.count(),
        ContactList.objects.count(),
        Segment.objects.count(),
        Suppression.objects.count(),
        ContactTag.objects.count(),
        SavedView.objects.count(),
    ) == counts
    for segment in Segment.objects.all():
        assert segments.count(segment.rules) > 0, segment.name


def test_the_demo_saved_view_and_name_search_find_patients(admin):
    demo.populate(actor=admin)
    view = SavedView.objects.get(owner=admin)
    query = search.ContactQuery(
        list_id=int(view.params["contact_list"]), tag_id=int(view.params["tag"])
    )
    assert search.contacts_matching(query).exists()
    some = demo._patients(timezone.localdate())[3]["last_name"]
    by_name = search.ContactQuery(search=search.blind_search(some))
    assert search.contacts_matching(by_name).exists()
