"""``crypto.Access`` can only come from the audited ``phi_access`` (issue 13, item 4).

Every way of making one by hand — the constructor, ``dataclasses.replace``-style copies,
``object.__new__`` with the attributes set behind its back, a subclass, promoting a
``secret_access`` to PHI, pickling — fails, and ``reveal`` refuses what it did not
issue, so PHI can be decrypted only after a ``phi.access`` audit event was written.
"""

from __future__ import annotations

import copy
import pickle

import pytest

from luxmail import crypto
from luxmail.models import AuditEvent
from tests.testapp.models import Vault

FORGED_FIELDS = {"purpose": "forged", "actor_id": None, "audit_event_id": 1, "phi": True}


@pytest.fixture
def vault(db):
    row = Vault()
    crypto.seal(row, "note", "Asthma, J45.909")
    crypto.seal(row, "secret", "relay-password")
    row.save()
    return Vault.objects.get(pk=row.pk)


def test_constructing_access_outside_the_crypto_module_fails():
    with pytest.raises(crypto.AccessDenied, match="phi_access"):
        crypto.Access(**FORGED_FIELDS)
    with pytest.raises(crypto.AccessDenied):
        crypto.Access("forged", 1, 1, True)
    with pytest.raises(crypto.AccessDenied):
        crypto.Access(object(), **FORGED_FIELDS)


def test_phi_access_is_audited_and_reveals(vault):
    before = AuditEvent.objects.filter(action="phi.access").count()
    access = crypto.phi_access(actor=None, purpose="unit-test", target=vault)
    assert AuditEvent.objects.filter(action="phi.access").count() == before + 1
    assert access.audit_event_id == AuditEvent.objects.order_by("-id").first().pk
    assert crypto.reveal(vault, "note", access=access) == "Asthma, J45.909"


def test_access_is_immutable(vault):
    access = crypto.secret_access("test")
    with pytest.raises(AttributeError):
        access.phi = True  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del access.purpose


def test_an_access_built_without_the_constructor_is_refused(vault):
    forged = object.__new__(crypto.Access)
    for name, value in FORGED_FIELDS.items():
        object.__setattr__(forged, name, value)
    with pytest.raises(crypto.AccessDenied, match="not issued"):
        crypto.reveal(vault, "note", access=forged)


def test_a_promoted_secret_access_is_refused(vault):
    access = crypto.secret_access("dkim.sign")
    object.__setattr__(access, "phi", True)  # behind the immutability
    with pytest.raises(crypto.AccessDenied, match="is PHI"):
        crypto.reveal(vault, "note", access=access)


def test_a_subclass_cannot_pass_for_an_access(vault):
    real = crypto.phi_access(actor=None, purpose="unit-test", target=vault)

    class Lookalike(crypto.Access):
        __slots__ = ()

        def __init__(self) -> None:
            pass

        def __eq__(self, other: object) -> bool:
            return True

        def __hash__(self) -> int:
            return hash(real)

    with pytest.raises(crypto.AccessDenied):
        crypto.reveal(vault, "note", access=Lookalike())


def test_an_access_cannot_be_copied_or_pickled(vault):
    access = crypto.phi_access(actor=None, purpose="unit-test", target=vault)
    for attempt in (copy.copy, copy.deepcopy, pickle.dumps):
        with pytest.raises(crypto.AccessDenied):
            attempt(access)


def test_something_that_is_not_an_access_is_refused(vault):
    class Duck:
        purpose, actor_id, audit_event_id, phi = "forged", None, 1, True

    with pytest.raises(crypto.AccessDenied):
        crypto.reveal(vault, "note", access=Duck())  # type: ignore[arg-type]
