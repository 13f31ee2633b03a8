"""The contact write engine behind every create, update, upsert and import.

:func:`normalize_row` turns one input mapping into validated, normalized values (all
errors of the row at once); :func:`write_plans` encrypts, tokenizes and writes a batch
in a handful of SQL statements. ``contacts/services.py`` wraps these in the public,
audited services; nothing else should call them.
"""

from __future__ import annotations

import datetime as dt
import struct
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, partial
from operator import attrgetter
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.models import signals as model_signals
from django.db.models.base import ModelState
from django.utils import timezone

from contacts import attributes
from contacts.attributes import (
    PROFILE_ATTRIBUTES,
    ContactValueError,
    CustomFieldDef,
    is_blank,
)
from contacts.models import (
    Contact,
    ContactProfile,
    ContactStatus,
    ContactTokenSet,
    CustomField,
    TokenIndexState,
)
from luxmail import crypto

IDENTITY_FIELDS = ("first_name", "last_name", "phone", "external_id", "time_zone", "status")
ENCRYPTED_IDENTITY = ("first_name", "last_name", "phone")
PROFILE_FIELDS = tuple(PROFILE_ATTRIBUTES)
ACCEPTED_KEYS = frozenset({"email", *IDENTITY_FIELDS, *PROFILE_FIELDS, "custom"})


@dataclass(frozen=True)
class RowError:
    """One problem of one input row. ``row`` is 1-based; ``message`` holds no PHI."""

    row: int
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "message": self.message}


@dataclass
class NormalizedRow:
    """The provided values of one row, normalized. Absent keys mean "leave as is"."""

    row: int
    email: str | None = None
    email_bidx: bytes | None = None
    domain: str | None = None
    identity: dict[str, Any] = field(default_factory=dict)
    profile: dict[str, Any] = field(default_factory=dict)
    custom: dict[str, Any] = field(default_factory=dict)


def definitions() -> dict[str, CustomFieldDef]:
    return {f.key: CustomFieldDef.of(f) for f in CustomField.objects.all()}


def email_bidx(address: str) -> bytes:
    return crypto.blind_index("email", address)


def normalize_row(
    data: Mapping[str, Any],
    *,
    row: int,
    defs: Mapping[str, CustomFieldDef],
    require_email: bool,
    blank_clears: bool,
) -> tuple[NormalizedRow, list[RowError]]:
    """Validate and normalize one input mapping; return every error of the row.

    Keys may be the field names of :data:`ACCEPTED_KEYS`, ``custom`` (a mapping) or
    ``custom.<key>``. A blank value (``None`` or empty text) clears the field when
    ``blank_clears`` and is ignored otherwise (imports never erase by omission).
    """
    out = NormalizedRow(row=row)
    errors: list[RowError] = []
    custom_in: dict[str, Any] = {}
    for key, value in data.items():
        if key == "custom":
            if value is None:
                continue
            if not isinstance(value, Mapping):
                errors.append(RowError(row, "custom", "Custom fields: expected an object."))
                continue
            custom_in.update(value)
        elif key.startswith("custom."):
            custom_in[key.removeprefix("custom.")] = value
        elif key not in ACCEPTED_KEYS:
            errors.append(RowError(row, key, f"Unknown field '{key[:50]}'."))

    def put(target: dict[str, Any], name: str, value: Any, normalize: Any) -> None:
        if is_blank(value) or value == []:
            if blank_clears:
                target[name] = None
            return
        try:
            target[name] = normalize(value)
        except ContactValueError as error:
            errors.append(RowError(row, error.field, error.message))

    raw_email = data.get("email")
    if is_blank(raw_email):
        if require_email:
            errors.append(RowError(row, "email", "Email: an address is required."))
    else:
        try:
            out.email, out.domain = attributes.normalize_email(raw_email)
            out.email_bidx = email_bidx(out.email)
        except ContactValueError as error:
            errors.append(RowError(row, error.field, error.message))

    normalizers = {
        "first_name": lambda v: attributes.normalize_name("first_name", v),
        "last_name": lambda v: attributes.normalize_name("last_name", v),
        "phone": attributes.normalize_phone,
        "external_id": attributes.normalize_external_id,
        "time_zone": attributes.normalize_time_zone,
        "status": lambda v: attributes.normalize_choice("status", v, ContactStatus.values),
    }
    for name, normalize in normalizers.items():
        if name in data:
            put(out.identity, name, data[name], normalize)
    normalize_attribute = attributes.normalize_attribute
    for name in PROFILE_FIELDS:
        if name not in data:
            continue
        # put() inlined: an import checks ~12 of these a row.
        value = data[name]
        if value is None or value == [] or (isinstance(value, str) and not value.strip()):
            if blank_clears:
                out.profile[name] = None
            continue
        try:
            out.profile[name] = normalize_attribute(name, value)
        except ContactValueError as error:
            errors.append(RowError(row, error.field, error.message))
    for key, value in custom_in.items():
        definition = defs.get(key)
        if definition is None:
            errors.append(
                RowError(row, f"custom.{key}"[:60], f"Unknown custom field '{key[:50]}'.")
            )
            continue
        put(out.custom, key, value, lambda v, d=definition: attributes.normalize_custom(d, v))
    return out, errors


# --- writing ----------------------------------------------------------------------------------


@dataclass
class Plan:
    """One contact to write: ``contact`` is None for a new one."""

    values: NormalizedRow
    contact: Contact | None = None
    changed: bool = True


@dataclass
class WriteResult:
    created: list[Contact] = field(default_factory=list)
    updated: list[Contact] = field(default_factory=list)
    unchanged: list[Contact] = field(default_factory=list)


def _current(contact: Contact, access: crypto.Access | None) -> dict[str, Any]:
    """The decrypted current values of an existing contact (for merging)."""
    profile = _profile_of(contact)
    values: dict[str, Any] = {
        "external_id": contact.external_id or None,
        "time_zone": contact.time_zone or None,
        "status": contact.status,
    }
    assert access is not None
    for name in ENCRYPTED_IDENTITY:
        values[name] = crypto.reveal(contact, name, access=access)
    values["email"] = crypto.reveal(contact, "email", access=access)
    for name in PROFILE_FIELDS:
        value = crypto.reveal(profile, name, access=access)
        if PROFILE_ATTRIBUTES[name].kind == "date" and isinstance(value, str):
            value = dt.date.fromisoformat(value)
        values[name] = value
    values["custom_phi"] = crypto.reveal(profile, "custom_phi", access=access) or {}
    values["custom"] = dict(profile.custom or {})
    return values


def _profile_of(contact: Contact) -> ContactProfile:
    try:
        return contact.profile
    except ContactProfile.DoesNotExist:
        profile = ContactProfile(contact=contact, uuid=contact.uuid)
        contact.profile = profile
        return profile


def write_plans(
    plans: Sequence[Plan],
    *,
    defs: Mapping[str, CustomFieldDef],
    access: crypto.Access | None,
) -> WriteResult:
    """Encrypt, tokenize and write ``plans`` (inside the caller's transaction).

    Existing contacts are merged with their decrypted current values (``access`` must
    then be given); a contact whose values do not change is left untouched, so writing
    the same data twice is a no-op.
    """
    now = timezone.now()
    result = WriteResult()
    new_contacts: list[Contact] = []
    new_profiles: list[ContactProfile] = []
    token_rows: dict[int, set[int]] = {}
    pending_tokens: list[tuple[Contact, set[int]]] = []
    changed_contacts: list[Contact] = []
    changed_profiles: list[ContactProfile] = []
    contact_fields: set[str] = set()
    profile_fields: set[str] = set()

    for plan in plans:
        v = plan.values
        if plan.contact is None:
            assert v.email is not None
            assert v.email_bidx is not None
            assert v.domain is not None
            row_uuid = uuid.uuid4()
            # One call per model and row: the key, header and AAD prefix are built once.
            sealed_identity = crypto.sealed_row(
                Contact,
                row_uuid,
                {
                    "email": v.email,
                    "first_name": v.identity.get("first_name"),
                    "last_name": v.identity.get("last_name"),
                    "phone": v.identity.get("phone"),
                },
            )
            contact = _build(
                Contact,
                id=None,
                uuid=row_uuid,
                email_bidx=v.email_bidx,
                domain=v.domain,
                **sealed_identity,
                external_id=v.identity.get("external_id") or None,
                status=v.identity.get("status") or ContactStatus.ACTIVE,
                status_changed_at=now,
                time_zone=v.identity.get("time_zone") or "",
                created_at=now,
                updated_at=now,
            )
            custom_phi, custom_plain = _split_custom(
                {k: x for k, x in v.custom.items() if x is not None}, defs
            )
            sealed_profile = crypto.sealed_row(
                ContactProfile,
                row_uuid,
                {
                    **{name: v.profile.get(name) for name in PROFILE_FIELDS},
                    "custom_phi": custom_phi or None,
                },
            )
            profile = _build(
                ContactProfile,
                contact_id=None,
                uuid=row_uuid,
                custom=custom_plain,
                updated_at=now,
                **sealed_profile,
            )
            _link_profile(contact, profile)
            new_contacts.append(contact)
            new_profiles.append(profile)
            pending_tokens.append(
                (
                    contact,
                    attributes.profile_tokens(v.profile, v.custom, defs)
                    | attributes.identity_tokens(
                        first_name=v.identity.get("first_name"),
                        last_name=v.identity.get("last_name"),
                        phone=v.identity.get("phone"),
                    ),
                )
            )
            continue

        contact = plan.contact
        profile = _profile_of(contact)
        current = _current(contact, access)
        changed_c: set[str] = set()
        changed_p: set[str] = set()
        if v.email is not None and v.email != current["email"]:
            crypto.seal(contact, "email", v.email)
            contact.email_bidx = v.email_bidx
            contact.domain = v.domain or ""
            changed_c |= {"email", "email_bidx", "domain"}
        for name, value in v.identity.items():
            if value == current[name]:
                continue
            if name in ENCRYPTED_IDENTITY:
                crypto.seal(contact, name, value)
            elif name == "status":
                if value is None:
                    continue
                contact.status = value
                contact.status_changed_at = now
                changed_c.add("status_changed_at")
            elif name == "time_zone":
                contact.time_zone = value or ""
            else:
                contact.external_id = value or None
            changed_c.add(name)
        merged_profile = {name: current[name] for name in PROFILE_FIELDS}
        for name, value in v.profile.items():
            if value != current[name]:
                crypto.seal(profile, name, value)
                merged_profile[name] = value
                changed_p.add(name)
        merged_custom = {
            k: x for k, x in {**current["custom_phi"], **current["custom"]}.items() if k in defs
        }
        stale_keys = set(current["custom_phi"]) | set(current["custom"])
        for key, value in v.custom.items():
            if value is None:
                merged_custom.pop(key, None)
            else:
                merged_custom[key] = value
        custom_phi, custom_plain = _split_custom(merged_custom, defs)
        if (
            custom_phi != current["custom_phi"]
            or custom_plain != current["custom"]
            or (stale_keys - set(defs))
        ):
            crypto.seal(profile, "custom_phi", custom_phi or None)
            profile.custom = custom_plain
            changed_p |= {"custom_phi", "custom"}
        if not changed_c and not changed_p:
            result.unchanged.append(contact)
            continue
        contact.updated_at = now
        changed_contacts.append(contact)
        contact_fields |= changed_c | {"updated_at"}
        if changed_p:
            profile.updated_at = now
            if profile.pk is None or profile._state.adding:
                new_profiles.append(profile)
            else:
                changed_profiles.append(profile)
                profile_fields |= changed_p | {"updated_at"}
        if changed_p or changed_c & set(ENCRYPTED_IDENTITY):
            # Name and phone tokens live in the same token set as the profile's.
            merged_identity = {
                name: v.identity[name] if name in v.identity else current[name]
                for name in ENCRYPTED_IDENTITY
            }
            token_rows[contact.pk] = attributes.profile_tokens(
                merged_profile, merged_custom, defs
            ) | attributes.identity_tokens(**merged_identity)
        result.updated.append(contact)

    if new_contacts:
        if connection.vendor == "postgresql":
            _assign_ids(new_contacts)
            _copy_rows(Contact, new_contacts)
        else:
            Contact.objects.bulk_create(new_contacts, batch_size=2000)
        for profile in new_profiles:
            profile.contact_id = profile.contact.pk
        for contact, found in pending_tokens:
            token_rows[contact.pk] = found
        result.created.extend(new_contacts)
    if new_profiles:
        if connection.vendor == "postgresql":
            _copy_rows(ContactProfile, new_profiles)
        else:
            ContactProfile.objects.bulk_create(new_profiles, batch_size=2000)
    if changed_contacts and contact_fields:
        _update_rows(Contact, changed_contacts, sorted(contact_fields))
    if changed_profiles and profile_fields:
        _update_rows(ContactProfile, changed_profiles, sorted(profile_fields))
    rewrite_tokens(token_rows, existing=[c.pk for c in changed_contacts])
    return result


def _build(model: type[models.Model], **values: Any) -> Any:
    """An unsaved instance from a value for every concrete field (keyed by attname).

    An import builds two instances a row: without ``pre_init``/``post_init`` receivers
    for ``model`` the instance is made as ``Model.__init__`` would leave it (a fresh
    ``_state``, every attname in ``__dict__``; plain fields have no data descriptor) at a
    fraction of its cost; with receivers it goes through the constructor so they run.
    """
    if model_signals.pre_init.has_listeners(model) or model_signals.post_init.has_listeners(model):
        instance = model(*[values[f.attname] for f in model._meta.concrete_fields])
    else:
        if values.keys() != _attnames(model):
            raise TypeError(f"{model.__name__}: a value for every concrete field is needed.")
        instance = model.__new__(model)
        instance.__dict__.update(values)
        instance._state = ModelState()
    instance._state.adding = True
    return instance


@cache
def _attnames(model: type[models.Model]) -> frozenset[str]:
    return frozenset(f.attname for f in model._meta.concrete_fields)


def _link_profile(contact: Contact, profile: ContactProfile) -> None:
    """``profile.contact = contact`` for an unsaved pair: both sides' caches, as the
    descriptor sets them (its checks cost more than the rest of building a row)."""
    _PROFILE_CONTACT.set_cached_value(profile, contact)
    _CONTACT_PROFILE.set_cached_value(contact, profile)


_PROFILE_CONTACT: Any = ContactProfile._meta.get_field("contact")
_CONTACT_PROFILE: Any = Contact._meta.get_field("profile")


def _split_custom(
    values: Mapping[str, Any], defs: Mapping[str, CustomFieldDef]
) -> tuple[dict[str, Any], dict[str, Any]]:
    phi: dict[str, Any] = {}
    plain: dict[str, Any] = {}
    for key, value in values.items():
        definition = defs.get(key)
        if definition is None or value is None:
            continue
        (phi if definition.phi else plain)[key] = value
    return phi, plain


def _assign_ids(contacts: Sequence[Contact]) -> None:
    """Take primary keys from the contacts sequence up front, so rows can be COPYed."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('contacts_contact', 'id')) "
            "FROM generate_series(1, %s)",
            [len(contacts)],
        )
        for contact, (pk,) in zip(contacts, cursor.fetchall(), strict=True):
            contact.pk = pk
            contact._state.adding = False


def _copy_rows(model: type[models.Model], objects: Sequence[models.Model]) -> None:
    """Insert ``objects`` with PostgreSQL COPY (several times faster than INSERT).

    Values are prepared by each field as ``save()`` would (encrypted fields still refuse
    anything but an envelope); objects must carry their primary keys and every value
    (COPY runs no ``pre_save``).
    """
    fields = [f for f in model._meta.concrete_fields if f.column]
    preparers = [_copy_preparer(f) for f in fields]
    values_of = attrgetter(*[f.attname for f in fields])  # one C call a row for ~15 values
    _copy(
        model._meta.db_table,
        [f.column for f in fields],
        (
            [prepare(value) for prepare, value in zip(preparers, values_of(obj), strict=True)]
            for obj in objects
        ),
        binary=True,
    )
    for obj in objects:
        obj._state.adding = False


# Values psycopg sends as they are: the field's own preparation would return them
# unchanged (an import copies ~30 values a row, and the generic path costs ~1 µs each).
_AS_IS: dict[type[models.Field], tuple[type, ...]] = {
    models.CharField: (str,),
    models.UUIDField: (uuid.UUID,),
    models.BigAutoField: (int,),
    models.AutoField: (int,),
    models.ForeignKey: (int,),
}


def _copy_preparer(field: models.Field) -> Any:
    """How COPY prepares a value of ``field``: as ``save()`` would, with shortcuts for
    values that preparation returns unchanged. Encrypted fields keep their check that the
    value is an envelope."""
    if isinstance(field, models.BinaryField):
        return field.get_prep_value
    prepare = partial(field.get_db_prep_save, connection=connections[DEFAULT_DB_ALIAS])
    as_is = _AS_IS.get(type(field))
    if type(field) is models.DateTimeField:

        def aware(value: Any) -> Any:
            if type(value) is dt.datetime and value.tzinfo is not None:
                return value
            return prepare(value)

        return aware
    if as_is is None:
        return prepare
    nullable = field.null

    def shortcut(value: Any) -> Any:
        if type(value) in as_is or (value is None and nullable):
            return value
        return prepare(value)

    return shortcut


def _copy(
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    binary: bool = False,
    types: Sequence[int] | None = None,
) -> None:
    """COPY ``rows`` into ``table``. ``binary``: PostgreSQL's binary format, for rows of
    envelopes: ``bytea`` goes as it is instead of hex text the server decodes again (the
    contact and profile COPY: ~2 µs a row less here, ~6 µs less waiting for the server).
    ``types`` (OIDs, binary implied) instead of the columns' own: see ``_TOKEN_TYPES``."""
    quote = connection.ops.quote_name
    wrapper = connections[DEFAULT_DB_ALIAS]
    with connection.cursor() as cursor, wrapper.wrap_database_errors:
        # The psycopg cursor behind Django's wrapper; errors still become django.db ones.
        raw = cursor.cursor
        statement = f"COPY {quote(table)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
        if binary or types is not None:
            binary = True
            types = list(types) if types is not None else _column_types(table, tuple(columns))
            statement += " (FORMAT BINARY)"
        if binary:
            # bytea's binary dumper by OID is the DB-API ``Binary`` one (Python, unwraps
            # its argument); the values here are plain bytes: psycopg's C dumper, on this
            # cursor only.
            from psycopg.types.string import BytesBinaryDumper

            raw.adapters.register_dumper(None, BytesBinaryDumper)
        with raw.copy(statement) as copy:
            if binary:
                copy.set_types(types)
            for row in rows:
                copy.write_row(row)


_TYPES: dict[tuple[str, str, tuple[str, ...]], list[int]] = {}


def _column_types(table: str, columns: tuple[str, ...]) -> list[int]:
    """The type OIDs of ``columns`` (binary COPY has no casts: each value is dumped as
    its column's type), read from the catalog once per database and table."""
    key = (str(connection.settings_dict["NAME"]), table, columns)
    if key not in _TYPES:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT attname, atttypid::integer FROM pg_attribute "
                "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                [connection.ops.quote_name(table)],
            )
            found = dict(cursor.fetchall())
        _TYPES[key] = [found[column] for column in columns]
    return _TYPES[key]


def _update_rows(
    model: type[models.Model], objects: Sequence[models.Model], names: Sequence[str]
) -> None:
    """Write ``names`` of ``objects``: on PostgreSQL COPY into a temporary table and one
    ``UPDATE … FROM`` (bulk_update's ``CASE`` per row is several times slower)."""
    if connection.vendor != "postgresql":
        model._default_manager.bulk_update(objects, list(names), batch_size=500)
        return
    wrapper = connections[DEFAULT_DB_ALIAS]
    quote = connection.ops.quote_name
    pk = model._meta.pk
    assert pk is not None
    fields = [pk, *(model._meta.get_field(name) for name in names)]
    columns = [str(f.column) for f in fields]  # type: ignore[union-attr]
    table = model._meta.db_table
    staging = f"staging_{table}_{uuid.uuid4().hex[:12]}"
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE {quote(staging)} ON COMMIT DROP AS "  # noqa: S608
            f"SELECT {', '.join(quote(c) for c in columns)} FROM {quote(table)} WITH NO DATA"
        )
    preparers = [
        f.get_prep_value
        if isinstance(f, models.BinaryField)
        else partial(f.get_db_prep_save, connection=wrapper)  # type: ignore[union-attr]
        for f in fields
    ]
    attnames = [f.attname for f in fields]  # type: ignore[union-attr]
    _copy(
        staging,
        columns,
        (
            [prep(getattr(obj, name)) for prep, name in zip(preparers, attnames, strict=True)]
            for obj in objects
        ),
    )
    assignments = ", ".join(f"{quote(c)} = s.{quote(c)}" for c in columns[1:])
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(table)} AS t SET {assignments} FROM {quote(staging)} AS s "  # noqa: S608
            f"WHERE t.{quote(columns[0])} = s.{quote(columns[0])}"
        )
        cursor.execute(f"DROP TABLE {quote(staging)}")


_INT8_OID, _BYTEA_OID = 20, 17
# Binary COPY of (contact_id, tokens): the tokens go as bytes already in bigint[]'s binary
# form, so psycopg is told "bytea" for them and sends them as they are (a binary COPY
# carries no type per value; the server reads them with bigint[]'s input function).
_TOKEN_TYPES = (_INT8_OID, _BYTEA_OID)
_ARRAY_HEADER = struct.Struct(
    ">iiiii"
)  # dimensions, has-nulls flag, element type, size, lower bound
_EMPTY_INT8_ARRAY = struct.pack(">iii", 0, 0, _INT8_OID)


@cache
def _int8_elements(count: int) -> struct.Struct:
    return struct.Struct(">" + "iq" * count)  # each element: its length (8), its value


def _int8_array(values: Sequence[int]) -> bytes:
    """``values`` as PostgreSQL's binary ``bigint[]`` (what ``array_send`` gives)."""
    count = len(values)
    if not count:
        return _EMPTY_INT8_ARRAY
    interleaved = [8] * (2 * count)
    interleaved[1::2] = values
    return _ARRAY_HEADER.pack(1, 0, _INT8_OID, count, 1) + _int8_elements(count).pack(*interleaved)


def rewrite_tokens(token_rows: Mapping[int, Iterable[int]], *, existing: Iterable[int]) -> None:
    """Replace the token sets of the given contacts (caller holds the transaction)."""
    if not token_rows:
        return
    if connection.vendor != "postgresql":
        ContactTokenSet.objects.bulk_create(
            [ContactTokenSet(contact_id=pk, tokens=sorted(v)) for pk, v in token_rows.items()],
            batch_size=2000,
            update_conflicts=True,
            unique_fields=["contact"],
            update_fields=["tokens"],
        )
        return
    stale = set(existing)
    # Packed here in the array's binary form: cheaper than a text literal (str() of ~35
    # 64-bit ints a row, parsed again by the server) or psycopg's per-element dumping.
    rows = {pk: _int8_array(sorted(found)) for pk, found in token_rows.items()}
    fresh = [pk for pk in rows if pk not in stale]
    table = ContactTokenSet._meta.db_table
    if fresh:
        _copy(table, ["contact_id", "tokens"], ((pk, rows[pk]) for pk in fresh), types=_TOKEN_TYPES)
    changed = [pk for pk in rows if pk in stale]
    if not changed:
        return
    staging = f"staging_tokens_{uuid.uuid4().hex[:12]}"
    with connection.cursor() as cursor:
        cursor.execute(
            f'CREATE TEMPORARY TABLE "{staging}" (contact_id bigint, tokens bigint[]) '
            "ON COMMIT DROP"
        )
    _copy(staging, ["contact_id", "tokens"], ((pk, rows[pk]) for pk in changed), types=_TOKEN_TYPES)
    with connection.cursor() as cursor:
        # Upsert: a contact written outside the services may have no token set yet.
        cursor.execute(
            f'INSERT INTO "{table}" (contact_id, tokens) '  # noqa: S608
            f'SELECT contact_id, tokens FROM "{staging}" '
            "ON CONFLICT (contact_id) DO UPDATE SET tokens = EXCLUDED.tokens"
        )
        cursor.execute(f'DROP TABLE "{staging}"')


def record_token_layout(version: int) -> None:
    """Record that every contact's token set now has layout ``version``
    (``contacts.tokens.TOKEN_VERSION``): segments may then use its tokens."""
    TokenIndexState.objects.update_or_create(pk=1, defaults={"version": version})


def tokens_rebuild(contacts: Iterable[Contact], *, access: crypto.Access) -> int:
    """Recompute the whole token set of each contact from its decrypted values.

    For data written before a token kind existed (issue 20 added name and phone
    tokens). The caller holds the transaction and the audited ``access``.
    """
    defs = definitions()
    token_rows: dict[int, set[int]] = {}
    for contact in contacts:
        current = _current(contact, access)
        profile = {name: current[name] for name in PROFILE_FIELDS}
        custom = {
            k: v for k, v in {**current["custom_phi"], **current["custom"]}.items() if k in defs
        }
        token_rows[contact.pk] = attributes.profile_tokens(
            profile, custom, defs
        ) | attributes.identity_tokens(**{name: current[name] for name in ENCRYPTED_IDENTITY})
    existing = ContactTokenSet.objects.filter(contact_id__in=list(token_rows))
    rewrite_tokens(token_rows, existing=existing.values_list("contact_id", flat=True))
    return len(token_rows)
