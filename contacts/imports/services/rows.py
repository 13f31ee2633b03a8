"""Reading and checking rows: two streaming passes over the file, dry-run batches.

Memory stays bounded whatever the file's size (docs/performance.md "Import"): nothing
holds the whole file. :func:`_scan` reads it once and keeps, per row, only 8-byte hashes
of its email address and external id and one byte saying whether the row is bad; it
finds the file-wide duplicates from those and keeps at most ``MAX_STORED_ERRORS`` error
messages (and the count of all). :func:`_good_batches` then reads the file again and
yields the rows without errors in batches of ``LUXMAIL_IMPORT_BATCH``.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from contacts import services as contact_services
from contacts.attributes import ContactValueError, normalize_email, normalize_external_id
from contacts.imports import columns, files
from contacts.imports.columns import PreparedRow
from contacts.imports.services.common import MAX_STORED_ERRORS, _progress
from contacts.models import ImportJob
from contacts.upsert import RowError
from luxmail.actors import Actor


@dataclass
class _Scan:
    """What the first pass learned: row count, which rows are bad, the first errors."""

    total: int = 0
    valid: int = 0
    bad: bytearray = field(default_factory=bytearray)  # index: row number; 1 = has errors
    errors: list[RowError] = field(default_factory=list)  # the lowest rows' errors only
    error_count: int = 0

    def is_bad(self, number: int) -> bool:
        return number < len(self.bad) and bool(self.bad[number])

    def mark(self, number: int, errors: Iterable[RowError]) -> None:
        """Record ``errors`` of row ``number`` (keeping only the first rows' messages)."""
        found = list(errors)
        if not found:
            return
        if number >= len(self.bad):
            self.bad.extend(bytes(number + 1 - len(self.bad)))
        self.bad[number] = 1
        self.error_count += len(found)
        self.errors.extend(found)
        if len(self.errors) > 2 * MAX_STORED_ERRORS:
            self.errors.sort(key=lambda e: e.row)
            del self.errors[MAX_STORED_ERRORS:]

    @property
    def bad_rows(self) -> int:
        return self.bad.count(1)

    def error_dicts(self) -> list[dict[str, Any]]:
        self.errors.sort(key=lambda e: e.row)
        return [e.as_dict() for e in self.errors[:MAX_STORED_ERRORS]]


def _key(text: str) -> int:
    # A 64-bit digest only to find equal values inside one file (no secret: it never
    # leaves this process); two different addresses share one with odds of ~n²/2⁶⁵.
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class _Seen:
    """Values by row, 12 bytes a row; ``duplicates`` names the second and later rows."""

    def __init__(self) -> None:
        self.keys = array("Q")
        self.rows = array("L")

    def add(self, value: str, row: int) -> None:
        self.keys.append(_key(value))
        self.rows.append(row)

    def duplicates(self) -> Iterator[tuple[int, int]]:
        """(row, first row with the same value); rows were added in ascending order."""
        order = sorted(range(len(self.keys)), key=self.keys.__getitem__)  # stable
        previous_key, first = -1, 0
        for index in order:
            key = self.keys[index]
            if key == previous_key:
                yield self.rows[index], first
            else:
                previous_key, first = key, self.rows[index]


def _rows(job: ImportJob) -> Iterator[PreparedRow]:
    """Every non-blank row of the job's file, prepared; streams the file."""
    with files.open_table(job.file_path, job.file_format) as table:
        headers = table.headers
        if [h.lower() for h in headers] != [h.lower() for h in job.headers]:
            raise files.ImportFileError("The file's columns changed since it was uploaded.")
        for number, row in table.rows:
            found = columns.prepare_row(number, dict(zip(headers, row, strict=True)), job.mapping)
            if found is not None:
                yield found


def _scan(job: ImportJob) -> _Scan:
    """First pass: count rows, collect their own errors and the file-wide duplicates.

    ``contacts_bulk_upsert`` catches duplicates inside one batch; a file is written in
    many batches, so the file-wide check happens here, with the same message.
    """
    _progress(job.pk, "reading", 0, 0)
    scan = _Scan()
    emails, externals = _Seen(), _Seen()
    for row in _rows(job):
        scan.total += 1
        scan.mark(row.number, row.errors)
        raw = row.data.get("email")
        if raw:
            try:
                address, _ = normalize_email(raw)
            except ContactValueError:
                address = ""
            if address:
                emails.add(address, row.number)
        external = row.data.get("external_id")
        if external:
            try:
                value = normalize_external_id(external)
            except ContactValueError:
                value = ""
            if value:
                externals.add(value, row.number)
        if scan.total % 10_000 == 0:
            _progress(job.pk, "reading", scan.total, 0)
    for number, first in emails.duplicates():
        scan.mark(
            number,
            [RowError(number, "email", f"Duplicate: the same email address is on row {first}.")],
        )
    for number, first in externals.duplicates():
        scan.mark(
            number,
            [
                RowError(
                    number, "external_id", f"Duplicate: the same external id is on row {first}."
                )
            ],
        )
    scan.valid = scan.total - scan.bad_rows
    return scan


def _batch_size() -> int:
    return max(1, min(settings.LUXMAIL_IMPORT_BATCH, contact_services.MAX_BATCH))


def _good_batches(job: ImportJob, scan: _Scan) -> Iterator[list[PreparedRow]]:
    """Second pass: the rows the scan found no error in, in bounded batches."""
    size = _batch_size()
    batch: list[PreparedRow] = []
    for row in _rows(job):
        if scan.is_bad(row.number):
            continue
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _attach(batch: Sequence[PreparedRow], errors: Sequence[RowError]) -> None:
    """Give each row the errors ``contacts_bulk_upsert`` reported by batch index."""
    for error in errors:
        row = batch[error.row]
        row.errors.append(RowError(row.number, error.field, error.message))


def _dry_run(batch: Sequence[PreparedRow], actor: Actor) -> contact_services.BulkUpsertResult:
    return contact_services.contacts_bulk_upsert(
        rows=[r.data for r in batch], actor=actor, dry_run=True, first_row_number=0
    )
