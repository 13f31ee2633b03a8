"""Issue 20: the contacts page filters by bounce reason (campaigns' BounceEvent.reason),
separately from the suppression reason, through the filter source campaigns registers."""

from __future__ import annotations

import pytest
from django.urls import reverse

from campaigns.models import BounceEvent
from contacts import browse_sources, search, services
from contacts.browse_forms import ContactFilterForm
from luxmail import roles

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(make_user):
    admin = make_user(roles.ADMIN)
    rows = [f"person{i}@example.org" for i in range(3)]
    return [services.contact_create(data={"email": email}, actor=admin) for email in rows]


def bounce(contact, reason, kind="hard"):
    return BounceEvent.objects.create(contact=contact, kind=kind, reason=reason, source="smtp")


def matching(**filters):
    query = ContactFilterForm(filters).query()
    return sorted(c.pk for c in search.contacts_matching(query))


def test_filter_by_bounce_reason_is_not_the_suppression_reason(people):
    gone, full, quiet = people
    bounce(gone, "user_unknown")
    bounce(full, "mailbox_full", kind="soft")
    bounce(full, "mailbox_full", kind="soft")
    assert browse_sources.bounce_source() is not None  # registered by CampaignsConfig
    assert matching(bounce="user_unknown") == [gone.pk]
    assert matching(bounce="mailbox_full") == [full.pk]  # once, not per bounce
    assert matching(bounce="blocked") == []
    # No suppression was made: the suppression-reason filter does not see bounces.
    assert matching(reason="hard_bounce") == []
    assert matching() == sorted(p.pk for p in people)
    # The filter survives a bulk job's spec and a saved view's parameters.
    query = ContactFilterForm({"bounce": "user_unknown"}).query()
    assert search.ContactQuery.from_spec(query.as_spec()) == query
    assert ContactFilterForm.params_of(query) == {"bounce": "user_unknown"}
    assert quiet.pk not in matching(bounce="user_unknown")


@pytest.mark.parametrize("value", ["x' OR 1=1 --", "a" * 5000, "\x00", "undefined\n"])
def test_hostile_bounce_reason_selects_nobody_and_never_500s(staff_client, people, value):
    bounce(people[0], "user_unknown")
    assert search.contacts_matching(search.ContactQuery(bounce_reason=value)).count() == 0
    response = staff_client(roles.MARKETER).get(reverse("contacts:index"), {"bounce": value})
    assert response.status_code == 200


def test_contacts_page_offers_and_applies_the_bounce_filter(staff_client, people):
    bounce(people[1], "user_unknown")
    client = staff_client(roles.MARKETER)
    page = client.get(reverse("contacts:index")).content.decode()
    assert 'name="bounce"' in page and "User unknown" in page
    filtered = client.get(reverse("contacts:index"), {"bounce": "user_unknown"}).content.decode()
    assert str(people[1].uuid) in filtered and str(people[0].uuid) not in filtered
