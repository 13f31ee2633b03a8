"""``contacts.upsert._build``: the import's fast instance construction."""

from __future__ import annotations

import uuid

import pytest
from django.db.models import signals
from django.utils import timezone

from contacts import upsert
from contacts.models import Contact, ContactProfile


def _values() -> dict:
    now = timezone.now()
    return {f.attname: None for f in ContactProfile._meta.concrete_fields} | {
        "uuid": uuid.uuid4(),
        "custom": {"plan": "gold"},
        "updated_at": now,
    }


def test_a_built_instance_is_what_the_constructor_makes():
    values = _values()
    built = upsert._build(ContactProfile, **values)
    made = ContactProfile(**values)
    assert built._state.adding and built._state.db is None
    assert {k: v for k, v in vars(built).items() if k != "_state"} == {
        k: v for k, v in vars(made).items() if k != "_state"
    }
    contact = Contact(uuid=values["uuid"])
    upsert._link_profile(contact, built)
    assert built.contact is contact and contact.profile is built


def test_init_receivers_still_run():
    seen: list[object] = []

    def receiver(sender, instance, **kwargs):
        seen.append(instance)

    signals.post_init.connect(receiver, sender=ContactProfile)
    try:
        built = upsert._build(ContactProfile, **_values())
    finally:
        signals.post_init.disconnect(receiver, sender=ContactProfile)
    assert seen == [built]


def test_every_concrete_field_needs_a_value():
    values = _values()
    del values["custom"]
    with pytest.raises(TypeError):
        upsert._build(ContactProfile, **values)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "values", [[], [1], [-5, 0, 7], [-(2**63), 2**63 - 1], list(range(-40, 40, 3))]
)
def test_token_arrays_are_packed_as_postgresql_sends_them(values):
    """rewrite_tokens COPYs token arrays in binary form it packs itself: the bytes are
    those of PostgreSQL's own ``array_send``, and they read back as the same array."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's binary array format")
    literal = "{" + ",".join(map(str, values)) + "}"
    with connection.cursor() as cursor:
        cursor.execute("SELECT array_send(%s::bigint[])", [literal])
        (sent,) = cursor.fetchone()
        assert bytes(sent) == upsert._int8_array(values)
        cursor.execute("CREATE TEMPORARY TABLE packed (id bigint, tokens bigint[])")
        upsert._copy(
            "packed", ["id", "tokens"], [(1, upsert._int8_array(values))], types=upsert._TOKEN_TYPES
        )
        cursor.execute("SELECT tokens FROM packed")
        assert cursor.fetchone()[0] == values
