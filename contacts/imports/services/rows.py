"""Reading and checking rows: the parsed file, duplicate rows, dry-run batches."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from contacts import services as contact_services
from contacts.attributes import ContactValueError, normalize_email, normalize_external_id
from contacts.imports import columns, files
from contacts.imports.columns import PreparedRow
from contacts.imports.services.common import MAX_STORED_ERRORS, _progress
from contacts.models import (
    ImportJob,
)
from contacts.upsert import RowError, email_bidx
from luxmail.actors import Actor


@dataclass
class _Rows:
    rows: list[PreparedRow]
    duplicates: set[int] = field(default_factory=set)

    @property
    def bad(self) -> list[PreparedRow]:
        return [r for r in self.rows if r.errors]


def _prepare(job: ImportJob) -> _Rows:
    _progress(job.pk, "reading", 0, 0)
    prepared: list[PreparedRow] = []
    with files.open_table(job.file_path, job.file_format) as table:
        headers = table.headers
        if [h.lower() for h in headers] != [h.lower() for h in job.headers]:
            raise files.ImportFileError("The file's columns changed since it was uploaded.")
        for number, row in table.rows:
            found = columns.prepare_row(number, dict(zip(headers, row, strict=True)), job.mapping)
            if found is not None:
                prepared.append(found)
    result = _Rows(prepared)
    _mark_duplicates(result)
    return result


def _mark_duplicates(rows: _Rows) -> None:
    """Flag the second and later rows with the same email or external id (file-wide).

    ``contacts_bulk_upsert`` catches duplicates inside one batch; a file is written in
    many batches, so the file-wide check happens here, with the same message.
    """
    emails: dict[bytes, int] = {}
    externals: dict[str, int] = {}
    for row in rows.rows:
        raw = row.data.get("email")
        if raw:
            try:
                address, _ = normalize_email(raw)
            except ContactValueError:
                address = ""
            if address:
                key = email_bidx(address)
                if key in emails:
                    row.errors.append(
                        RowError(
                            row.number,
                            "email",
                            f"Duplicate: the same email address is on row {emails[key]}.",
                        )
                    )
                    rows.duplicates.add(row.number)
                else:
                    emails[key] = row.number
        external = row.data.get("external_id")
        if external:
            try:
                value = normalize_external_id(external)
            except ContactValueError:
                value = ""
            if value and value in externals:
                row.errors.append(
                    RowError(
                        row.number,
                        "external_id",
                        f"Duplicate: the same external id is on row {externals[value]}.",
                    )
                )
                rows.duplicates.add(row.number)
            elif value:
                externals[value] = row.number


def _batches(rows: Sequence[PreparedRow]) -> Iterator[list[PreparedRow]]:
    size = max(1, min(settings.LUXMAIL_IMPORT_BATCH, contact_services.MAX_BATCH))
    for start in range(0, len(rows), size):
        yield list(rows[start : start + size])


def _attach(batch: Sequence[PreparedRow], errors: Sequence[RowError]) -> None:
    """Give each row the errors ``contacts_bulk_upsert`` reported by batch index."""
    for error in errors:
        row = batch[error.row]
        row.errors.append(RowError(row.number, error.field, error.message))


def _dry_run(batch: Sequence[PreparedRow], actor: Actor) -> contact_services.BulkUpsertResult:
    return contact_services.contacts_bulk_upsert(
        rows=[r.data for r in batch], actor=actor, dry_run=True, first_row_number=0
    )


def _error_dicts(rows: Sequence[PreparedRow]) -> tuple[list[dict[str, Any]], int]:
    found = [e for r in rows for e in r.errors]
    found.sort(key=lambda e: e.row)
    return [e.as_dict() for e in found[:MAX_STORED_ERRORS]], len(found)
