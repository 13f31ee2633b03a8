"""``__any_of`` selects the rows ``__in`` selects (one array parameter on PostgreSQL)."""

from __future__ import annotations

import pytest
from django.db import connection

from contacts.models import Contact, ContactPreference

pytestmark = pytest.mark.django_db


def test_any_of_is_in(django_assert_num_queries):
    ids = list(Contact.objects.values_list("id", flat=True)[:5])
    wanted = [*ids[:3], 999_999_999]
    assert set(Contact.objects.filter(id__any_of=wanted).values_list("id", flat=True)) == set(
        Contact.objects.filter(id__in=wanted).values_list("id", flat=True)
    )
    assert list(Contact.objects.filter(id__any_of=[])) == []
    assert list(ContactPreference.objects.filter(contact_id__any_of=[1, 2])) == list(
        ContactPreference.objects.filter(contact_id__in=[1, 2])
    )
    sql = str(Contact.objects.filter(id__any_of=[1, 2]).query)
    if connection.vendor == "postgresql":
        assert "= ANY(" in sql and "{1,2}" in sql
    with pytest.raises(ValueError):
        list(Contact.objects.filter(id__any_of=["1; DROP TABLE x"]))
