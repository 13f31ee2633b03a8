import base64
import datetime as dt
import io
import uuid

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection, transaction
from django.test import override_settings

from luxmail import crypto
from luxmail.models import AuditEvent
from tests.testapp.models import Vault

KEY_A = "a:" + base64.b64encode(b"A" * 32).decode()
KEY_B = "b:" + base64.b64encode(b"B" * 32).decode()


def _access():
    return crypto.phi_access(actor=None, purpose="test")


@pytest.fixture
def vault(db):
    row = Vault()
    crypto.seal(row, "note", "Type 2 diabetes, E11.9")
    crypto.seal(row, "data", {"conditions": ["E11.9", "I10"], "weight": 81.5})
    crypto.seal(row, "born", dt.date(1961, 4, 2))
    crypto.seal(row, "secret", "relay-password")
    row.save()
    return Vault.objects.get(pk=row.pk)


def test_round_trip_text_json_date(vault):
    access = _access()
    assert crypto.reveal(vault, "note", access=access) == "Type 2 diabetes, E11.9"
    assert crypto.reveal(vault, "data", access=access) == {
        "conditions": ["E11.9", "I10"],
        "weight": 81.5,
    }
    assert crypto.reveal(vault, "born", access=access) == dt.date(1961, 4, 2)


def test_revealed_rows_is_reveal_per_field(vault):
    access = _access()
    names = ["note", "data", "born", "secret"]
    row = (vault.uuid, [getattr(vault, name) for name in names])
    assert (
        crypto.revealed_rows(Vault, names, [row, row], access=access)
        == [{name: crypto.reveal(vault, name, access=access) for name in names}] * 2
    )
    assert crypto.revealed_rows(Vault, ["note"], [(vault.uuid, [None])], access=access) == [
        {"note": None}
    ]
    with pytest.raises(crypto.AccessDenied):
        crypto.revealed_rows(Vault, ["secret", "note"], [row], access=crypto.secret_access("t"))
    with pytest.raises(crypto.AccessDenied):
        crypto.revealed_rows(Vault, ["note"], [], access=crypto.secret_access("t"))
    # The row's uuid is in the associated data: another row's envelope does not open.
    other = Vault()
    crypto.seal(other, "note", "x")
    with pytest.raises(crypto.DecryptionError):
        crypto.revealed_rows(Vault, ["note"], [(vault.uuid, [other.note])], access=access)
    # Nor does another field's envelope of the same row.
    with pytest.raises(crypto.DecryptionError):
        crypto.revealed_rows(Vault, ["note"], [(vault.uuid, [vault.secret])], access=access)


def test_envelope_carries_version_key_id_and_nonce(vault):
    envelope = vault.note
    assert envelope[0] == crypto.ENVELOPE_VERSION
    assert crypto.envelope_key_id(envelope) == crypto.keyring().primary_id
    other = Vault()
    crypto.seal(other, "note", "Type 2 diabetes, E11.9")
    assert other.note != envelope, "a fresh nonce makes equal plaintexts differ"


def test_phi_access_writes_an_audit_event(vault):
    before = AuditEvent.objects.count()
    crypto.phi_access(actor=None, purpose="unit-test", target=vault)
    event = AuditEvent.objects.order_by("-id").first()
    assert AuditEvent.objects.count() == before + 1
    assert event.action == "phi.access" and event.phi and event.details["purpose"] == "unit-test"


def test_phi_field_refuses_secret_access(vault):
    with pytest.raises(crypto.AccessDenied):
        crypto.reveal(vault, "note", access=crypto.secret_access("test"))
    assert crypto.reveal(vault, "secret", access=crypto.secret_access("test")) == "relay-password"


def test_tampered_ciphertext_raises(vault):
    flipped = bytearray(vault.note)
    flipped[-1] ^= 0x01
    vault.note = bytes(flipped)
    with pytest.raises(crypto.DecryptionError, match="failed authentication"):
        crypto.reveal(vault, "note", access=_access())


def test_truncated_ciphertext_raises(vault):
    vault.note = vault.note[:10]
    with pytest.raises(crypto.DecryptionError, match="truncated"):
        crypto.reveal(vault, "note", access=_access())


def test_value_copied_to_another_row_raises(vault):
    other = Vault()
    crypto.seal(other, "note", "something else")
    other.save()
    Vault.objects.filter(pk=other.pk).update(note=vault.note)
    other = Vault.objects.get(pk=other.pk)
    with pytest.raises(crypto.DecryptionError):
        crypto.reveal(other, "note", access=_access())


def test_value_copied_to_another_field_raises(vault):
    vault.secret = vault.note
    with pytest.raises(crypto.DecryptionError):
        crypto.reveal(vault, "secret", access=crypto.secret_access("test"))


def test_missing_key_raises_naming_the_key(vault):
    with (
        override_settings(LUXMAIL_ENCRYPTION_KEYS=KEY_A),
        pytest.raises(crypto.MissingKeyError, match="t2"),
    ):
        crypto.reveal(vault, "note", access=_access())


def test_plaintext_assignment_is_refused(db):
    row = Vault(note="plain PHI")
    with pytest.raises(TypeError, match="plaintext"), transaction.atomic():
        row.save()
    assert not Vault.objects.exists()


def test_database_holds_only_ciphertext(vault):
    with connection.cursor() as cursor:
        cursor.execute("SELECT note, data FROM testapp_vault WHERE id = %s", [vault.pk])
        note, data = cursor.fetchone()
    assert b"diabetes" not in bytes(note)
    assert b"E11.9" not in bytes(data)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "nocolon",
        "x:notbase64!",
        "x:" + base64.b64encode(b"short").decode(),
        KEY_A + "," + KEY_A,
    ],
)
def test_bad_key_ring_is_a_clear_configuration_error(value):
    with pytest.raises(ImproperlyConfigured, match="LUXMAIL_ENCRYPTION_KEYS"):
        crypto.KeyRing.parse(value)


def test_rotation_keeps_values_readable_and_none_under_old_key(db):
    with override_settings(LUXMAIL_ENCRYPTION_KEYS=KEY_A):
        rows = []
        for i in range(25):
            row = Vault()
            crypto.seal(row, "note", f"note {i}")
            crypto.seal(row, "data", {"i": i})
            crypto.seal(row, "born", dt.date(1950, 1, 1) + dt.timedelta(days=i))
            row.save()
            rows.append(row.pk)
    with override_settings(LUXMAIL_ENCRYPTION_KEYS=f"{KEY_B},{KEY_A}"):
        out = io.StringIO()
        call_command("rotate_keys", "--batch-size", "7", "--no-progress", stdout=out)
        assert "75 values re-encrypted" in out.getvalue()
        access = _access()
        for i, pk in enumerate(rows):
            row = Vault.objects.get(pk=pk)
            for name in ("note", "data", "born"):
                assert crypto.envelope_key_id(getattr(row, name)) == "b"
            assert crypto.reveal(row, "note", access=access) == f"note {i}"
            assert crypto.reveal(row, "data", access=access) == {"i": i}
        # Running again (resume) rewrites nothing.
        out = io.StringIO()
        call_command("rotate_keys", "--no-progress", stdout=out)
        assert "0 values re-encrypted" in out.getvalue()
    # With only the new key the data is still readable: nothing depends on the old one.
    with override_settings(LUXMAIL_ENCRYPTION_KEYS=KEY_B):
        assert crypto.reveal(Vault.objects.get(pk=rows[3]), "note", access=_access()) == "note 3"


def test_rotation_resumes_after_interruption(db):
    with override_settings(LUXMAIL_ENCRYPTION_KEYS=KEY_A):
        for i in range(10):
            row = Vault()
            crypto.seal(row, "note", f"n{i}")
            row.save()
        broken = Vault.objects.order_by("pk")[6]
        Vault.objects.filter(pk=broken.pk).update(note=Vault.objects.order_by("pk")[0].note)
    with override_settings(LUXMAIL_ENCRYPTION_KEYS=f"{KEY_B},{KEY_A}"):
        with pytest.raises(Exception, match="failed authentication"):
            call_command("rotate_keys", "--batch-size", "3", "--no-progress", stdout=io.StringIO())
        keys = [crypto.envelope_key_id(v.note) for v in Vault.objects.order_by("pk")]
        assert keys[:6] == ["b"] * 6, "committed batches before the bad row stay rotated"
        assert keys[6:] == ["a"] * 4


def test_blind_index_equal_for_equal_normalized_values():
    assert crypto.blind_index("email", " Ann.Lee@Example.org ") == crypto.blind_index(
        "email", "ann.lee@example.org"
    )
    assert crypto.blind_token("condition", "E11.9") == crypto.blind_token("condition", "e11.9")
    assert len(crypto.blind_index("email", "x")) == 32


def test_blind_index_differs_across_fields_and_values():
    assert crypto.blind_index("condition", "E11.9") != crypto.blind_index("medication", "E11.9")
    assert crypto.blind_token("zip5", "02139") != crypto.blind_token("zip5", "02138")


def test_blind_index_depends_on_the_key():
    before = crypto.blind_index("email", "a@b.org")
    with override_settings(LUXMAIL_BLIND_INDEX_KEY=base64.b64encode(b"\x09" * 32).decode()):
        assert crypto.blind_index("email", "a@b.org") != before


def test_associated_data_binds_model_field_and_row():
    row = uuid.uuid4()
    assert crypto.associated_data("contacts.contact", "email", row) != crypto.associated_data(
        "contacts.contact", "first_name", row
    )


def test_sealed_row_envelopes_equal_sealed_ones_but_for_the_nonce(db):
    row = Vault()
    values = {"note": "Asthma, J45.909", "data": {"a1c": 7.1}, "born": dt.date(1970, 1, 2)}
    found = crypto.sealed_row(Vault, row.uuid, {**values, "secret": None})
    assert found["secret"] is None
    nonces = set()
    for name, value in values.items():
        envelope = found[name]
        single = crypto.sealed(Vault, name, row.uuid, value)
        header = 2 + envelope[1]
        assert envelope[:header] == single[:header] and len(envelope) == len(single)
        nonces.add(envelope[header : header + crypto.NONCE_BYTES])
        setattr(row, name, envelope)
    assert len(nonces) == len(values), "every value has its own nonce"
    row.save()
    row = Vault.objects.get(pk=row.pk)
    assert crypto.reveal_many(row, values, access=_access()) == values
    row.note, row.born = row.born, row.note  # bound to its field: a swap is refused
    with pytest.raises(crypto.DecryptionError):
        crypto.reveal(row, "note", access=_access())


def test_keyed_sha256_is_hmac_sha256():
    import hashlib
    import hmac
    import random

    generator = random.Random(16)
    for size in (0, 1, 31, 32, 63, 64, 65, 100, 200):
        key = generator.randbytes(size)
        mac = crypto.KeyedSha256(key)
        for length in (0, 1, 8, 55, 56, 64, 1000):
            data = generator.randbytes(length)
            assert mac.digest(data) == hmac.new(key, data, hashlib.sha256).digest()
            assert mac.digest(data) == mac.digest(data)  # the keyed state is not consumed
