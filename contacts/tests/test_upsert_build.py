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
