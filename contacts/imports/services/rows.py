"""Reading and checking rows: one streaming pass over the file, in batches.

Memory stays bounded whatever the file's size (docs/architecture.md "Import"): no step
holds the whole file. :func:`_row_batches` reads it once and yields prepared rows in
batches of ``LUXMAIL_IMPORT_BATCH``; :class:`_Duplicates` finds the file-wide
duplicates batch by batch, keeping an 8-byte digest of each distinct value and the row
it was first seen on in a PostgreSQL temporary table (:class:`_SeenTable`: one query
a batch, nothing in this process that grows with the file); :class:`_Errors` counts
every row error and keeps the messages of the first ``MAX_STORED_ERRORS`` only (the
pages say how many more there are). Every row goes through the same checks as before
streaming: its own problems (consent columns, keys), the duplicate check and the dry run of
``contacts_bulk_upsert`` (for every row that is not a duplicate, even one that already
has a problem, so the check page lists all of a row's problems at once).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection

from contacts import services as contact_services
from contacts.attributes import ContactValueError, normalize_email, normalize_external_id
from contacts.imports import columns, files
from contacts.imports.columns import PreparedRow
from contacts.imports.services.common import MAX_STORED_ERRORS
from contacts.models import ImportJob
from contacts.upsert import RowError
from luxmail.actors import Actor


def _signed_digest(text: str, key: bytes) -> int:
    """A 64-bit keyed digest as a PostgreSQL ``bigint`` (signed). ``key`` is drawn per
    file and never leaves this process, so the digests the database holds (in a temporary
    table that may spill to disk) cannot be matched against guessed addresses."""
    found = hashlib.blake2b(text.encode(), digest_size=8, key=key).digest()
    return int.from_bytes(found, "big", signed=True)


class _Seen:
    """The first row of each value seen so far, 12 bytes a slot (open addressing).

    ``first_digest(digest, row)`` (the value's 64-bit digest) returns the row the value
    was first seen on, or None (and remembers ``row``) when it is new. The table doubles
    at half load, so it holds at most 4 slots per distinct value: 48 bytes, against ~100
    for a ``dict`` of ints.
    """

    def __init__(self, capacity: int = 1024) -> None:
        size = 1
        while size < capacity:
            size *= 2
        self.keys = array("Q", bytes(8 * size))
        self.rows = array("I", bytes(4 * size))
        self.mask = size - 1
        self.used = 0

    def __len__(self) -> int:
        return self.used

    def first_digest(self, key: int, row: int) -> int | None:
        key = key & 0xFFFFFFFFFFFFFFFF or 1  # unsigned, never the empty slot's 0
        keys, mask = self.keys, self.mask
        slot = key & mask
        while True:
            found = keys[slot]
            if found == key:
                return self.rows[slot]
            if found == 0:
                break
            slot = (slot + 1) & mask
        keys[slot] = key
        self.rows[slot] = row
        self.used += 1
        if self.used * 2 > len(keys):
            self._grow()
        return None

    def _grow(self) -> None:
        old_keys, old_rows = self.keys, self.rows
        size = 2 * len(old_keys)
        self.keys = array("Q", bytes(8 * size))
        self.rows = array("I", bytes(4 * size))
        self.mask = mask = size - 1
        keys, rows = self.keys, self.rows
        for key, row in zip(old_keys, old_rows, strict=True):
            if key:
                slot = key & mask
                while keys[slot]:
                    slot = (slot + 1) & mask
                keys[slot] = key
                rows[slot] = row


_KEYS = (  # what must be unique in a file: (row column, its name in messages, normalizer)
    ("email", "email address", lambda raw: normalize_email(raw)[0]),
    ("external_id", "external id", normalize_external_id),
)


class _SeenTable:
    """The first row of each (key, digest) seen so far, in a PostgreSQL temporary table.

    The memory of the duplicate check does not grow with the file: the table lives in
    the database session (on disk past ``temp_buffers``), one row of 14 bytes per
    distinct value. Inside a transaction (the import) it is dropped on commit or
    rollback; outside one (the check) :meth:`close` drops it.
    """

    def __init__(self) -> None:
        self.name = f"import_seen_{uuid.uuid4().hex[:16]}"
        self.open = False

    def _create(self) -> None:
        drop = " ON COMMIT DROP" if connection.in_atomic_block else ""
        with connection.cursor() as cursor:
            cursor.execute(
                f'CREATE TEMPORARY TABLE "{self.name}" (kind smallint NOT NULL, '
                "digest bigint NOT NULL, row integer NOT NULL, PRIMARY KEY (kind, digest))" + drop
            )
        self.open = True

    def firsts(self, keys: dict[tuple[int, int], int]) -> dict[tuple[int, int], int]:
        """Remember each new key with its row; return the earlier row of the keys seen."""
        if not keys:
            return {}
        if not self.open:
            self._create()
        kinds, digests, rows = [], [], []
        for (kind, digest), row in keys.items():
            kinds.append(kind)
            digests.append(digest)
            rows.append(row)
        with connection.cursor() as cursor:
            # The SELECT sees the table as it was before this statement's INSERT: only
            # values of earlier batches come back.
            cursor.execute(
                "WITH incoming (kind, digest, row) AS ("  # noqa: S608
                "  SELECT * FROM unnest(%s::smallint[], %s::bigint[], %s::integer[])), "
                f'added AS (INSERT INTO "{self.name}" SELECT * FROM incoming '
                "  ON CONFLICT DO NOTHING) "
                f'SELECT s.kind, s.digest, s.row FROM "{self.name}" s '
                "JOIN incoming i ON i.kind = s.kind AND i.digest = s.digest",
                [kinds, digests, rows],
            )
            return {(kind, digest): row for kind, digest, row in cursor.fetchall()}

    def close(self) -> None:
        if self.open and not connection.in_atomic_block:
            with connection.cursor() as cursor:
                cursor.execute(f'DROP TABLE IF EXISTS "{self.name}"')
        self.open = False


class _SeenMemory:
    """:class:`_SeenTable` in this process (databases other than PostgreSQL)."""

    def __init__(self) -> None:
        self.seen = [_Seen() for _ in _KEYS]

    def firsts(self, keys: dict[tuple[int, int], int]) -> dict[tuple[int, int], int]:
        found = {}
        for (kind, digest), row in keys.items():
            first = self.seen[kind].first_digest(digest, row)
            if first is not None:
                found[(kind, digest)] = first
        return found

    def close(self) -> None:
        pass


class _Duplicates:
    """The file-wide duplicate check (email, external id) for batches streamed in order.

    ``contacts_bulk_upsert`` catches duplicates inside one batch; a file is written in
    many batches, so the file-wide check happens here, with the same message. Values
    are kept as 64-bit digests with the row they were first seen on, in the database
    (:class:`_SeenTable`): one query per batch, and memory independent of the file.
    """

    def __init__(self) -> None:
        self.key = os.urandom(16)
        self.store: _SeenTable | _SeenMemory = (
            _SeenTable() if connection.vendor == "postgresql" else _SeenMemory()
        )

    def mark(self, rows: Sequence[PreparedRow]) -> set[int]:
        """Add the rows' duplicate errors; return the numbers of rows that repeat an
        earlier row (of this batch or of an earlier one)."""
        keyed: list[tuple[PreparedRow, int, int]] = []
        for row in rows:
            for kind, (column, _, normalize) in enumerate(_KEYS):
                raw = row.data.get(column)
                if not raw:
                    continue
                try:
                    value = normalize(raw)
                except ContactValueError:
                    continue
                if value:
                    keyed.append((row, kind, _signed_digest(value, self.key)))
        in_batch: dict[tuple[int, int], int] = {}
        for row, kind, digest in keyed:
            in_batch.setdefault((kind, digest), row.number)
        earlier = self.store.firsts(in_batch)
        repeated: set[int] = set()
        for row, kind, digest in keyed:
            key = (kind, digest)
            first = earlier.get(key, in_batch[key])
            if first == row.number:
                continue
            column, label, _ = _KEYS[kind]
            row.errors.append(
                RowError(row.number, column, f"Duplicate: the same {label} is on row {first}.")
            )
            repeated.add(row.number)
        return repeated

    def close(self) -> None:
        self.store.close()


@dataclass
class _Errors:
    """Every row error counted; the messages of the lowest rows kept (at most ``keep``)."""

    keep: int = -1  # MAX_STORED_ERRORS
    kept: list[RowError] = field(default_factory=list)
    count: int = 0
    bad_rows: int = 0

    def __post_init__(self) -> None:
        if self.keep < 0:
            self.keep = MAX_STORED_ERRORS

    def add(self, rows: Iterable[PreparedRow]) -> None:
        for row in rows:
            if not row.errors:
                continue
            self.bad_rows += 1
            self.count += len(row.errors)
            self.kept.extend(row.errors)
        if len(self.kept) > 2 * self.keep:
            self._trim()

    def _trim(self) -> None:
        self.kept.sort(key=lambda e: e.row)  # stable: a row's errors keep their order
        del self.kept[self.keep :]

    @property
    def first(self) -> RowError | None:
        return min(self.kept, key=lambda e: e.row) if self.kept else None

    def dicts(self) -> list[dict[str, Any]]:
        self._trim()
        return [e.as_dict() for e in self.kept]


def _batch_size() -> int:
    return max(1, min(settings.LUXMAIL_IMPORT_BATCH, contact_services.MAX_BATCH))


@dataclass
class _Batch:
    """One batch of the file: its rows, and those that repeat an earlier row."""

    rows: list[PreparedRow]
    duplicates: set[int]
    read: int  # file rows read so far, blank ones included (progress)


def _row_batches(
    job: ImportJob, size: int | None = None, *, check_duplicates: bool = True
) -> Iterator[_Batch]:
    """Every non-blank row of the job's file, prepared and duplicate-checked, in batches.

    Streams the file: only one batch of rows is alive at a time. ``check_duplicates``
    False skips the file-wide duplicate check (the import of a file whose check found no
    error: the stored file is the one checked; a duplicate inside one batch is still
    found by ``contacts_bulk_upsert``, and the unique indexes stand behind both).
    """
    size = size or _batch_size()
    duplicates = _Duplicates() if check_duplicates else None

    def repeats(rows: list[PreparedRow]) -> set[int]:
        return duplicates.mark(rows) if duplicates is not None else set()

    try:
        with files.open_table(job.file_path, job.file_format) as table:
            headers = table.headers
            if [h.lower() for h in headers] != [h.lower() for h in job.headers]:
                raise files.ImportFileError("The file's columns changed since it was uploaded.")
            prepare = columns.row_preparer(job.headers, job.mapping)
            batch: list[PreparedRow] = []
            read = 0
            for number, values in table.rows:
                read += 1
                found = prepare(number, values)
                if found is None:
                    continue
                batch.append(found)
                if len(batch) >= size:
                    yield _Batch(batch, repeats(batch), read)
                    batch = []
            if batch:
                yield _Batch(batch, repeats(batch), read)
    finally:
        if duplicates is not None:
            duplicates.close()


def _attach(batch: Sequence[PreparedRow], errors: Sequence[RowError]) -> None:
    """Give each row the errors ``contacts_bulk_upsert`` reported by batch index."""
    for error in errors:
        row = batch[error.row]
        row.errors.append(RowError(row.number, error.field, error.message))


def _dry_run(batch: Sequence[PreparedRow], actor: Actor) -> contact_services.BulkUpsertResult:
    return contact_services.contacts_bulk_upsert(
        rows=[r.data for r in batch], actor=actor, dry_run=True, first_row_number=0
    )
