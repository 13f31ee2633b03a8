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


# Values an array literal must quote: quotes, backslashes, commas, braces, blanks, NULL.
AWKWARD = ['a"b', "c\\d", "e,f", "{g}", " h ", "NULL", "ünï", "plain"]


def _contacts_with_external_ids() -> list[Contact]:
    import uuid

    return Contact.objects.bulk_create(
        Contact(
            uuid=uuid.uuid4(),
            email_bidx=bytes([index]) * 31 + b"\\",  # a backslash byte, too
            domain="example.test",
            external_id=external,
        )
        for index, external in enumerate(AWKWARD)
    )


def test_any_of_on_text_is_in():
    _contacts_with_external_ids()
    for wanted in (AWKWARD, AWKWARD[:3], ["a", "b\\", 'c"'], ["NULL"], [*AWKWARD[5:], "missing"]):
        by_any = Contact.objects.filter(external_id__any_of=wanted)
        by_in = Contact.objects.filter(external_id__in=wanted)
        assert set(by_any.values_list("external_id", flat=True)) == set(
            by_in.values_list("external_id", flat=True)
        ), wanted
    assert Contact.objects.filter(external_id__any_of=AWKWARD).count() == len(AWKWARD)
    assert list(Contact.objects.filter(external_id__any_of=[])) == []
    if connection.vendor == "postgresql":
        sql, params = Contact.objects.filter(external_id__any_of=AWKWARD).query.sql_with_params()
        assert "= ANY(%s::text[])" in sql and len(params) == 1
    with pytest.raises(TypeError):
        list(Contact.objects.filter(external_id__any_of=[1]))


def test_any_of_on_bytes_is_in():
    contacts = _contacts_with_external_ids()
    wanted = [bytes(c.email_bidx) for c in contacts[2:5]] + [b"\x00" * 32, b'\\"']
    by_any = Contact.objects.filter(email_bidx__any_of=wanted).values_list("pk", flat=True)
    by_in = Contact.objects.filter(email_bidx__in=wanted).values_list("pk", flat=True)
    assert set(by_any) == set(by_in) == {c.pk for c in contacts[2:5]}
    assert list(Contact.objects.filter(email_bidx__any_of=[])) == []
    if connection.vendor == "postgresql":
        sql, params = Contact.objects.filter(email_bidx__any_of=wanted).query.sql_with_params()
        assert "= ANY(%s::bytea[])" in sql and len(params) == 1
