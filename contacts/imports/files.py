"""Uploaded import files: where they wait, how they are read, when they go.

Files are read through django-import-export's format classes (``base_formats.CSV`` /
``base_formats.XLSX``), subclassed so that row numbers stay those of the spreadsheet:
blank rows are kept (and later skipped) instead of silently dropped, which would shift
every row number an error report gives. Files are written with mode 0600 under
``settings.LUXMAIL_IMPORT_DIR`` with a random name; the original name is kept only on
the :class:`~contacts.models.ImportJob`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import tablib
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from import_export.formats import base_formats

from contacts.services import ContactsError

FORMATS = ("csv", "xlsx")
_DELIMITERS = ",;\t|"
_XLSX_MAGIC = b"PK\x03\x04"


class ImportFileError(ContactsError):
    """The uploaded file cannot be used; the message says why (never cell values)."""


def import_dir() -> Path:
    path = Path(settings.LUXMAIL_IMPORT_DIR)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def path_of(relative: str) -> Path:
    """The absolute path of a stored upload; refuses anything outside the import dir."""
    base = import_dir().resolve()
    path = (base / relative).resolve()
    if path.parent != base:
        raise ImportFileError("The stored file name is not valid.")
    return path


def format_of(name: str, head: bytes) -> str:
    """``csv`` or ``xlsx`` from the file name, checked against the content."""
    suffix = Path(name).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise ImportFileError("Upload a .csv or .xlsx file (Excel 2007 or newer).")
    if suffix == "xlsx" and not head.startswith(_XLSX_MAGIC):
        raise ImportFileError("This .xlsx file is not an Excel workbook; save it again as .xlsx.")
    if suffix == "csv" and head.startswith(_XLSX_MAGIC):
        raise ImportFileError("This file is an Excel workbook; name it .xlsx or save it as CSV.")
    return suffix


def store_upload(*, uploaded: UploadedFile, name: str) -> tuple[str, str, int]:
    """Write the upload to the import dir; returns ``(file name, format, size)``."""
    size = uploaded.size or 0
    if size == 0:
        raise ImportFileError("The file is empty.")
    limit = settings.LUXMAIL_IMPORT_MAX_BYTES
    if size > limit:
        raise ImportFileError(f"The file is larger than {limit // (1024 * 1024)} MB; split it.")
    uploaded.seek(0)
    head = uploaded.read(8)
    uploaded.seek(0)
    fmt = format_of(uploaded.name or "", head)
    filename = f"{name}.{fmt}"
    path = import_dir() / filename
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        for chunk in uploaded.chunks():
            out.write(chunk)
    return filename, fmt, size


def delete(relative: str) -> None:
    """Delete a stored upload (missing files are fine: deletion is idempotent)."""
    if not relative:
        return
    try:
        path_of(relative).unlink(missing_ok=True)
    except ImportFileError:
        return


# --- reading ------------------------------------------------------------------------------


def _decode(raw: bytes) -> str:
    """UTF-8 (with or without BOM), else Windows-1252, the two encodings Excel writes."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError:
        raise ImportFileError(
            "The file is not UTF-8 or Windows-1252 text; save it as UTF-8 CSV."
        ) from None


def _delimiter(text: str) -> str:
    first = text.split("\n", 1)[0]
    counts = {d: first.count(d) for d in _DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def clean_headers(raw: Iterable[Any]) -> list[str]:
    headers = [" ".join(str(h).split()) if h is not None else "" for h in raw]
    while headers and not headers[-1]:
        headers.pop()
    if not headers:
        raise ImportFileError("The first row must hold the column names; it is empty.")
    seen: set[str] = set()
    for position, header in enumerate(headers, start=1):
        if not header:
            raise ImportFileError(f"Column {position} has no name in the first row.")
        if header.lower() in seen:
            raise ImportFileError(f"The column name '{header[:60]}' appears twice.")
        seen.add(header.lower())
    return headers


class SpreadsheetCSV(base_formats.CSV):
    """CSV that keeps blank rows, sniffs ``,`` ``;`` tab or ``|`` and checks row widths."""

    def create_dataset(self, in_stream: Any, **kwargs: Any) -> tablib.Dataset:
        text = _decode(in_stream) if isinstance(in_stream, bytes) else str(in_stream)
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
        dataset = tablib.Dataset()
        try:
            header_row = next(reader, None)
            if header_row is None:
                raise ImportFileError("The file is empty.")
            dataset.headers = clean_headers(header_row)
            width = len(dataset.headers)
            limit = settings.LUXMAIL_IMPORT_MAX_ROWS
            for number, row in enumerate(reader, start=2):
                if len(row) > width and any(cell.strip() for cell in row[width:]):
                    raise ImportFileError(
                        f"Row {number} has more cells than there are column names."
                    )
                if number - 1 > limit:
                    raise ImportFileError(f"The file has more than {limit:,} rows; split it.")
                dataset.append((row + [""] * width)[:width])
        except csv.Error:
            raise ImportFileError("The CSV file is malformed (an unclosed quote?).") from None
        return dataset


class Workbook(base_formats.XLSX):
    """The first sheet of an XLSX workbook; blank rows kept, formulas read as values."""

    def create_dataset(self, in_stream: Any, **kwargs: Any) -> tablib.Dataset:
        import openpyxl
        from openpyxl.utils.exceptions import InvalidFileException

        try:
            book = openpyxl.load_workbook(io.BytesIO(in_stream), read_only=True, data_only=True)
        except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError):
            raise ImportFileError(
                "The workbook cannot be opened; save it again as .xlsx."
            ) from None
        try:
            sheet = book.active
            if sheet is None:
                raise ImportFileError("The workbook has no sheet.")
            rows = sheet.iter_rows(values_only=True)
            first = next(rows, None)
            if first is None:
                raise ImportFileError("The first sheet is empty.")
            dataset = tablib.Dataset()
            dataset.headers = clean_headers(first)
            width = len(dataset.headers)
            limit = settings.LUXMAIL_IMPORT_MAX_ROWS
            for number, row in enumerate(rows, start=2):
                values = list(row)
                if len(values) > width and any(v not in (None, "") for v in values[width:]):
                    raise ImportFileError(
                        f"Row {number} has values in columns without a name in the first row."
                    )
                if number - 1 > limit:
                    raise ImportFileError(f"The file has more than {limit:,} rows; split it.")
                dataset.append((values + [None] * width)[:width])
            return dataset
        finally:
            book.close()


def _format(fmt: str) -> base_formats.Format:
    if fmt == "csv":
        return SpreadsheetCSV()
    if fmt == "xlsx":
        return Workbook()
    raise ImportFileError("Upload a .csv or .xlsx file.")


def read_dataset(relative: str, fmt: str) -> tablib.Dataset:
    """The whole file as a dataset (headers + one tuple per spreadsheet row)."""
    path = path_of(relative)
    if not path.exists():
        raise ImportFileError("The uploaded file is no longer there; upload it again.")
    return _format(fmt).create_dataset(path.read_bytes())


def read_headers(relative: str, fmt: str) -> list[str]:
    """Only the header row (cheap: the upload step shows the mapping right away)."""
    path = path_of(relative)
    if fmt == "csv":
        with path.open("rb") as handle:
            head = handle.read(256 * 1024)
        text = _decode(head) if len(head) < 256 * 1024 else _decode_prefix(head)
        try:
            row = next(csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text)), None)
        except csv.Error:
            raise ImportFileError("The CSV file is malformed (an unclosed quote?).") from None
        if row is None:
            raise ImportFileError("The file is empty.")
        return clean_headers(row)
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError):
        raise ImportFileError("The workbook cannot be opened; save it again as .xlsx.") from None
    try:
        sheet = book.active
        first = next(sheet.iter_rows(values_only=True), None) if sheet is not None else None
        if first is None:
            raise ImportFileError("The first sheet is empty.")
        return clean_headers(first)
    finally:
        book.close()


def _decode_prefix(head: bytes) -> str:
    # A prefix may end inside a multi-byte UTF-8 character: drop up to 3 trailing bytes.
    for cut in range(4):
        try:
            return head[: len(head) - cut].decode("utf-8-sig")
        except UnicodeDecodeError:
            continue
    return _decode(head)


def cell_text(value: Any) -> Any:
    """A cell as the contacts normalizers expect it: text, or a date for date cells.

    Spreadsheets store numbers as floats (``6175550100.0``); whole numbers become
    integer text so phone numbers, ZIP codes and ids survive.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime):
        return value.date() if value.time() == dt.time(0, 0) else value.isoformat(sep=" ")
    if isinstance(value, dt.date | int):
        return value if isinstance(value, dt.date) else str(value)
    return str(value).strip()
