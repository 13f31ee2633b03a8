"""Uploaded import files: where they wait, how they are read, when they go.

Every file here comes from a stranger, so both steps are bounded (docs/security.md,
"Import limits"):

* **Upload** (web request) only stores the file and does cheap checks: its size and,
  for a workbook, the zip central directory (member count, declared expanded size,
  compression ratio per member and overall, no encrypted or unusual members). Nothing
  is decompressed or parsed in the request.
* **Reading** happens in the import tasks (Celery) and streams: CSV line by line with a
  bounded line length; XLSX member by member from the zip, counting the decompressed
  bytes as they come and stopping past the cap, through ``defusedxml`` (no DTD, no
  entities, no external references) with a parser target that never builds a tree and
  checks depth, rows, columns, cell length and the shared-strings table as it goes.

Each limit has its own message naming it; no message ever quotes a cell value. Files
are written with mode 0600 under ``settings.LUXMAIL_IMPORT_DIR`` with a random name;
the original name is kept only on the :class:`~contacts.models.ImportJob`.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import os
import posixpath
import re
import struct
import zipfile
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from xml.etree.ElementTree import ParseError
from xml.parsers.expat import ExpatError

from defusedxml.common import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from contacts.services import ContactsError

FORMATS = ("csv", "xlsx")
_DELIMITERS = ",;\t|"
_XLSX_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .xls and password-protected .xlsx
_CHUNK = 64 * 1024
_MB = 1024 * 1024


class ImportFileError(ContactsError):
    """The uploaded file cannot be used; the message says why (never cell values)."""


@dataclass(frozen=True)
class Limits:
    """What one import file may hold (settings ``LUXMAIL_IMPORT_*``)."""

    max_bytes: int
    max_expanded_bytes: int
    max_ratio: int
    max_members: int
    max_rows: int
    max_columns: int
    max_cell_chars: int
    max_line_chars: int
    max_shared_strings: int
    max_shared_bytes: int
    max_depth: int = 64

    @classmethod
    def current(cls) -> Limits:
        return cls(
            max_bytes=settings.LUXMAIL_IMPORT_MAX_BYTES,
            max_expanded_bytes=settings.LUXMAIL_IMPORT_MAX_EXPANDED_BYTES,
            max_ratio=settings.LUXMAIL_IMPORT_MAX_RATIO,
            max_members=settings.LUXMAIL_IMPORT_MAX_MEMBERS,
            max_rows=settings.LUXMAIL_IMPORT_MAX_ROWS,
            max_columns=settings.LUXMAIL_IMPORT_MAX_COLUMNS,
            max_cell_chars=settings.LUXMAIL_IMPORT_MAX_CELL_CHARS,
            max_line_chars=settings.LUXMAIL_IMPORT_MAX_LINE_CHARS,
            max_shared_strings=settings.LUXMAIL_IMPORT_MAX_SHARED_STRINGS,
            max_shared_bytes=settings.LUXMAIL_IMPORT_MAX_SHARED_BYTES,
        )

    # One place for the wording of each limit, so the docs and the tests match.
    def too_many_rows(self) -> ImportFileError:
        return ImportFileError(f"More than {self.max_rows:,} rows: split the file.")

    def too_many_columns(self) -> ImportFileError:
        return ImportFileError(
            f"More than {self.max_columns:,} columns: remove the columns you do not import."
        )

    def cell_too_long(self, row: int) -> ImportFileError:
        return ImportFileError(
            f"Row {row} has a cell longer than {self.max_cell_chars:,} characters."
        )

    def expands_too_much(self) -> ImportFileError:
        return ImportFileError(
            f"The file expands to more than {self.max_expanded_bytes // _MB:,} MB when "
            "unpacked: split it or remove unused sheets and formatting."
        )

    def compressed_too_much(self) -> ImportFileError:
        return ImportFileError(
            f"The workbook is compressed more than {self.max_ratio:,} to 1, which no "
            "spreadsheet needs: it is refused as a possible zip bomb. Save it again as .xlsx."
        )


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
    if suffix == "xlsx" and head.startswith(_OLE_MAGIC):
        raise ImportFileError(
            "This workbook is password-protected or in the old .xls format; save it "
            "without a password as .xlsx."
        )
    if suffix == "xlsx" and not head.startswith(_XLSX_MAGIC):
        raise ImportFileError("This .xlsx file is not an Excel workbook; save it again as .xlsx.")
    if suffix == "csv" and head.startswith(_XLSX_MAGIC):
        raise ImportFileError("This file is an Excel workbook; name it .xlsx or save it as CSV.")
    return suffix


def store_upload(*, uploaded: UploadedFile, name: str) -> tuple[str, str, int]:
    """Write the upload to the import dir after cheap checks; ``(file name, format, size)``.

    Nothing is parsed here (that happens in the import task); a workbook's zip
    directory is checked (:func:`check_workbook_zip`) and a refused file is not kept.
    """
    size = uploaded.size or 0
    if size == 0:
        raise ImportFileError("The file is empty.")
    limits = Limits.current()
    if size > limits.max_bytes:
        raise ImportFileError(f"The file is larger than {limits.max_bytes // _MB} MB; split it.")
    uploaded.seek(0)
    head = uploaded.read(8)
    uploaded.seek(0)
    fmt = format_of(uploaded.name or "", head)
    filename = f"{name}.{fmt}"
    path = import_dir() / filename
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in uploaded.chunks():
                out.write(chunk)
        if fmt == "xlsx":
            with path.open("rb") as handle:
                check_workbook_zip(handle, limits)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return filename, fmt, size


def delete(relative: str) -> None:
    """Delete a stored upload (missing files are fine: deletion is idempotent)."""
    if not relative:
        return
    try:
        path_of(relative).unlink(missing_ok=True)
    except ImportFileError:
        return


# --- the zip directory (upload time: nothing is decompressed) -----------------------------

_NOT_WORKBOOK = "This .xlsx file is not an Excel workbook; save it again as .xlsx."
_DAMAGED = "The workbook is damaged (its zip structure cannot be read); save it again as .xlsx."
_RATIO_FLOOR = 1 * _MB  # tiny parts may compress well; the ratio applies above this size


def _ratio_exceeded(expanded: int, compressed: int, limits: Limits) -> bool:
    return expanded > _RATIO_FLOOR and expanded > limits.max_ratio * max(compressed, 1)


def check_workbook_zip(handle: IO[bytes], limits: Limits) -> None:
    """Refuse a workbook from its zip directory alone: members, sizes, ratios, flags.

    The member count comes from the end-of-central-directory record *before* Python's
    ``zipfile`` builds one object per member, so a directory of a million entries
    costs nothing. Declared sizes may lie; the reader counts real bytes again.
    """
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    tail_size = min(size, 22 + 0xFFFF)
    handle.seek(size - tail_size)
    tail = handle.read(tail_size)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) < at + 22:
        raise ImportFileError(_NOT_WORKBOOK)
    entries, directory_size = struct.unpack("<HI", tail[at + 10 : at + 16])
    if entries == 0xFFFF or directory_size == 0xFFFFFFFF:
        raise ImportFileError("The workbook uses the ZIP64 format; save it again as .xlsx.")
    if entries > limits.max_members or directory_size > limits.max_members * 1024:
        raise ImportFileError(
            f"The workbook has more than {limits.max_members:,} parts (zip members); "
            "save it again as .xlsx with one sheet."
        )
    try:
        handle.seek(0)
        infos = zipfile.ZipFile(handle).infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError):
        raise ImportFileError(_DAMAGED) from None
    if len(infos) > limits.max_members:
        raise ImportFileError(
            f"The workbook has more than {limits.max_members:,} parts (zip members)."
        )
    names: set[str] = set()
    expanded = compressed = 0
    for info in infos:
        name = info.filename
        if info.flag_bits & 0x1:
            raise ImportFileError("The workbook is encrypted; save it without a password as .xlsx.")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ImportFileError(
                "The workbook uses an unusual compression method; save it again as .xlsx."
            )
        parts = name.replace("\\", "/").split("/")
        if not name or name.startswith(("/", "\\")) or ".." in parts or ":" in name:
            raise ImportFileError("The workbook has a part with an invalid name.")
        if name.lower() in names:
            raise ImportFileError("The workbook has two parts with the same name.")
        names.add(name.lower())
        if _ratio_exceeded(info.file_size, info.compress_size, limits):
            raise limits.compressed_too_much()
        expanded += info.file_size
        compressed += info.compress_size
    if expanded > limits.max_expanded_bytes:
        raise limits.expands_too_much()
    if _ratio_exceeded(expanded, compressed, limits):
        raise limits.compressed_too_much()
    if "[content_types].xml" not in names:
        raise ImportFileError(_NOT_WORKBOOK)


# --- common to both formats -----------------------------------------------------------------


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


@dataclass
class Table:
    """A file being read: its column names and, lazily, ``(row number, values)``.

    Row numbers are the spreadsheet's (the header is row 1); blank rows may be skipped
    or yielded as blanks. ``values`` has exactly ``len(headers)`` entries.
    """

    headers: list[str]
    rows: Iterator[tuple[int, tuple[Any, ...]]]


@contextmanager
def open_table(relative: str, fmt: str, limits: Limits | None = None) -> Iterator[Table]:
    """Open a stored upload for streaming; every limit is enforced while reading."""
    limits = limits or Limits.current()
    path = path_of(relative)
    if not path.exists():
        raise ImportFileError("The uploaded file is no longer there; upload it again.")
    if fmt == "csv":
        with _open_csv(path, limits) as table:
            yield table
    elif fmt == "xlsx":
        with _open_workbook(path, limits) as table:
            yield table
    else:
        raise ImportFileError("Upload a .csv or .xlsx file.")


def read_headers(relative: str, fmt: str) -> list[str]:
    """Only the header row."""
    with open_table(relative, fmt) as table:
        return table.headers


def scan(relative: str, fmt: str, progress: Callable[[int], None] | None = None) -> list[str]:
    """Read the whole file once, discarding rows: every limit is checked; the headers.

    ``progress`` gets the count of rows read every 5,000 rows and the final count.
    """
    with open_table(relative, fmt) as table:
        count = 0
        for count, _ in enumerate(table.rows, start=1):
            if progress is not None and count % 5000 == 0:
                progress(count)
        if progress is not None:
            progress(count)
        return table.headers


def _fitted(number: int, values: list[Any], width: int, limits: Limits) -> tuple[Any, ...]:
    if len(values) > width:
        if any(v not in (None, "") for v in values[width:]):
            if len(values) > limits.max_columns:
                raise limits.too_many_columns()
            raise ImportFileError(
                f"Row {number} has values in columns without a name in the first row."
            )
        return tuple(values[:width])
    return tuple(values + [None] * (width - len(values)))


# --- CSV ------------------------------------------------------------------------------------


def _encoding(path: Path) -> str:
    """UTF-8 (with or without BOM), else Windows-1252, the two encodings Excel writes."""
    for encoding in ("utf-8-sig", "cp1252"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with path.open("rb") as handle:
                while chunk := handle.read(_CHUNK):
                    decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return encoding
    raise ImportFileError("The file is not UTF-8 or Windows-1252 text; save it as UTF-8 CSV.")


def _delimiter(line: str) -> str:
    counts = {d: line.count(d) for d in _DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _bounded_lines(handle: IO[str], limits: Limits) -> Iterator[str]:
    number = 0
    while line := handle.readline(limits.max_line_chars + 1):
        number += 1
        if len(line) > limits.max_line_chars:
            raise ImportFileError(
                f"Line {number:,} is longer than {limits.max_line_chars:,} characters; "
                "is this really a CSV file?"
            )
        yield line


@contextmanager
def _open_csv(path: Path, limits: Limits) -> Iterator[Table]:
    encoding = _encoding(path)
    with path.open("r", encoding=encoding, newline="") as handle:
        lines = _bounded_lines(handle, limits)
        first = next(lines, None)
        if first is None:
            raise ImportFileError("The file is empty.")
        delimiter = _delimiter(first)

        def all_lines() -> Iterator[str]:
            yield first
            yield from lines

        reader = csv.reader(all_lines(), delimiter=delimiter)
        try:
            header_row = next(reader, None)
        except csv.Error as error:
            raise _csv_error(error, 1, limits) from None
        if header_row is None:
            raise ImportFileError("The file is empty.")
        if len([h for h in header_row if h.strip()]) > limits.max_columns:
            raise limits.too_many_columns()
        if any(len(h) > limits.max_cell_chars for h in header_row):
            raise limits.cell_too_long(1)
        headers = clean_headers(header_row)
        yield Table(headers, _csv_rows(reader, len(headers), limits))


def _csv_error(error: csv.Error, number: int, limits: Limits) -> ImportFileError:
    if "field larger than field limit" in str(error):
        return limits.cell_too_long(number)
    return ImportFileError("The CSV file is malformed (an unclosed quote?).")


def _csv_rows(
    reader: Iterator[list[str]], width: int, limits: Limits
) -> Iterator[tuple[int, tuple[Any, ...]]]:
    number = 1
    while True:
        try:
            row = next(reader, None)
        except csv.Error as error:
            raise _csv_error(error, number + 1, limits) from None
        if row is None:
            return
        number += 1
        if number - 1 > limits.max_rows:
            raise limits.too_many_rows()
        if any(len(cell) > limits.max_cell_chars for cell in row):
            raise limits.cell_too_long(number)
        yield number, _fitted(number, list(row), width, limits)


# --- XLSX: a streaming reader over the zip members -------------------------------------------

_REL_OFFICE_DOCUMENT = "/officeDocument"
_REL_SHARED_STRINGS = "/sharedStrings"
_REL_STYLES = "/styles"
_FORBIDDEN_XML = (
    "The workbook contains XML declarations (a DTD, entities or external references) "
    "that spreadsheets do not need; they are refused for safety. Save it again as .xlsx."
)
_BAD_XML = "The workbook's XML is damaged; save it again as .xlsx."


def _attr(attrib: dict[str, str], local: str) -> str | None:
    """An attribute by its local name, whatever its namespace (strict and transitional)."""
    if local in attrib:
        return attrib[local]
    suffix = "}" + local
    for key, value in attrib.items():
        if key.endswith(suffix):
            return value
    return None


class _Budget:
    """Decompressed bytes read from one workbook, over all its members."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.left = limits.max_expanded_bytes

    def stream(self, book: zipfile.ZipFile, name: str) -> Iterator[bytes]:
        try:
            info = book.getinfo(name)
        except KeyError:
            raise ImportFileError(_NOT_WORKBOOK) from None
        read = 0
        try:
            with book.open(info) as member:
                while chunk := member.read(_CHUNK):
                    read += len(chunk)
                    self.left -= len(chunk)
                    if self.left < 0:
                        raise self.limits.expands_too_much()
                    if _ratio_exceeded(read, info.compress_size, self.limits):
                        raise self.limits.compressed_too_much()
                    yield chunk
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError):
            raise ImportFileError(_DAMAGED) from None


class _Target:
    """A parser target that builds no tree: subclasses act on start/data/end."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.depth = 0

    def start(self, tag: str, attributes: list[str]) -> None:
        # Called by expat directly (see _parse): names are "namespace}local" and the
        # attributes a flat [name, value, ...] list.
        self.depth += 1
        if self.depth > self.limits.max_depth:
            raise ImportFileError(
                f"The workbook's XML is nested more than {self.limits.max_depth} levels "
                "deep; save it again as .xlsx."
            )
        attrib = dict(zip(attributes[::2], attributes[1::2], strict=True)) if attributes else {}
        self.on_start(tag[tag.rfind("}") + 1 :], attrib)

    def end(self, tag: str) -> None:
        self.depth -= 1
        self.on_end(tag[tag.rfind("}") + 1 :])

    def data(self, text: str) -> None:
        pass

    def on_start(self, name: str, attrib: dict[str, str]) -> None:
        pass

    def on_end(self, name: str) -> None:
        pass


def _parse(chunks: Iterable[bytes], target: _Target) -> Iterator[None]:
    """Feed ``chunks`` to a defused parser; yields after each chunk (for streaming)."""
    parser = DefusedXMLParser(forbid_dtd=True, forbid_entities=True, forbid_external=True)
    # defusedxml installed its DTD/entity/external-reference handlers on the expat
    # parser; element and text events go straight to the target, skipping
    # ElementTree's Python layer (about twice as fast, and no tree is built).
    expat = parser.parser
    expat.StartElementHandler = target.start
    expat.EndElementHandler = target.end
    expat.CharacterDataHandler = target.data
    try:
        for chunk in chunks:
            parser.feed(chunk)
            yield None
        expat.Parse(b"", True)  # not parser.close(): there is no tree to finish
    except DefusedXmlException:
        raise ImportFileError(_FORBIDDEN_XML) from None
    except (ParseError, ExpatError):
        raise ImportFileError(_BAD_XML) from None


def _parse_all(chunks: Iterable[bytes], target: _Target) -> None:
    for _ in _parse(chunks, target):
        pass


class _Relationships(_Target):
    def __init__(self, limits: Limits):
        super().__init__(limits)
        self.by_id: dict[str, tuple[str, str]] = {}

    def on_start(self, name: str, attrib: dict[str, str]) -> None:
        if name == "Relationship" and len(self.by_id) < 10_000:
            self.by_id[attrib.get("Id", "")] = (attrib.get("Type", ""), attrib.get("Target", ""))

    def of_type(self, suffix: str) -> str | None:
        for kind, target in self.by_id.values():
            if kind.endswith(suffix):
                return target
        return None


class _WorkbookPart(_Target):
    def __init__(self, limits: Limits):
        super().__init__(limits)
        self.sheets: list[str] = []
        self.active = 0
        self.date1904 = False

    def on_start(self, name: str, attrib: dict[str, str]) -> None:
        if name == "sheet" and len(self.sheets) < 10_000:
            self.sheets.append(_attr(attrib, "id") or "")
        elif name == "workbookView":
            tab = attrib.get("activeTab", "0")
            self.active = int(tab) if tab.isdigit() and len(tab) < 6 else 0
        elif name == "workbookPr":
            self.date1904 = attrib.get("date1904", "").lower() in ("1", "true")


# Built-in number formats that show dates or times (ECMA-376 18.8.30).
_DATE_FORMAT_IDS = frozenset({14, 15, 16, 17, 18, 19, 20, 21, 22, 45, 46, 47})
_FORMAT_NOISE = re.compile(r'"[^"]*"|\\.|\[[^\]]*\]|_.|\*.')
_DATE_CODE = re.compile(r"[dmyhs]", re.IGNORECASE)


def _is_date_format(code: str) -> bool:
    section = _FORMAT_NOISE.sub("", code.split(";")[0])
    return section.lower() != "general" and bool(_DATE_CODE.search(section))


class _Styles(_Target):
    """Which cell styles (``s`` index) show a date: numFmts and cellXfs only."""

    def __init__(self, limits: Limits):
        super().__init__(limits)
        self.custom: dict[int, str] = {}
        self.formats: list[int] = []
        self.in_cell_xfs = False

    def on_start(self, name: str, attrib: dict[str, str]) -> None:
        if name == "numFmt" and len(self.custom) < 1000:
            ident = attrib.get("numFmtId", "")
            if ident.isdigit() and len(ident) < 6:
                self.custom[int(ident)] = attrib.get("formatCode", "")[:255]
        elif name == "cellXfs":
            self.in_cell_xfs = True
        elif name == "xf" and self.in_cell_xfs and len(self.formats) < 65_536:
            ident = attrib.get("numFmtId", "0")
            self.formats.append(int(ident) if ident.isdigit() and len(ident) < 6 else 0)

    def on_end(self, name: str) -> None:
        if name == "cellXfs":
            self.in_cell_xfs = False

    def date_styles(self) -> frozenset[int]:
        return frozenset(
            index
            for index, ident in enumerate(self.formats)
            if ident in _DATE_FORMAT_IDS
            or (ident in self.custom and _is_date_format(self.custom[ident]))
        )


class _SharedStrings(_Target):
    """The shared-strings table, stored compactly: UTF-8 bytes plus an offsets array.

    A Python ``str`` per entry would cost ~50 bytes of overhead each; this costs 8,
    so the caps on count and total size bound the memory too.
    """

    def __init__(self, limits: Limits):
        super().__init__(limits)
        self.buffer = bytearray()
        self.offsets = array("Q", [0])
        self.parts: list[str] = []
        self.length = 0
        self.collect = False
        self.phonetic = 0

    def on_start(self, name: str, attrib: dict[str, str]) -> None:
        if name == "t" and not self.phonetic:
            self.collect = True
        elif name == "rPh":
            self.phonetic += 1
        elif name == "si":
            self.parts = []
            self.length = 0

    def data(self, text: str) -> None:
        if self.collect:
            self.length += len(text)
            if self.length > self.limits.max_cell_chars:
                raise ImportFileError(
                    f"The workbook has a text longer than {self.limits.max_cell_chars:,} "
                    "characters."
                )
            self.parts.append(text)

    def on_end(self, name: str) -> None:
        if name == "t":
            self.collect = False
        elif name == "rPh":
            self.phonetic -= 1
        elif name == "si":
            if len(self.offsets) > self.limits.max_shared_strings:
                raise ImportFileError(
                    f"The workbook has more than {self.limits.max_shared_strings:,} "
                    "different texts; split it."
                )
            self.buffer += "".join(self.parts).encode("utf-8")
            if len(self.buffer) > self.limits.max_shared_bytes:
                raise ImportFileError(
                    f"The workbook's texts take more than "
                    f"{self.limits.max_shared_bytes // _MB:,} MB; split it."
                )
            self.offsets.append(len(self.buffer))
            self.parts = []

    def get(self, index: int) -> str:
        if not 0 <= index < len(self.offsets) - 1:
            raise ImportFileError(_BAD_XML)
        return self.buffer[self.offsets[index] : self.offsets[index + 1]].decode("utf-8")


_EXCEL_EPOCH = dt.datetime(1899, 12, 30)
_EXCEL_EPOCH_1904 = dt.datetime(1904, 1, 1)


def _column(ref: str) -> int:
    """1-based column of a cell reference (``"AB12"`` → 28); huge for nonsense."""
    number = 0
    for position, char in enumerate(ref):
        if "A" <= char <= "Z":
            number = number * 26 + ord(char) - 64
        elif position == 0:
            return 1 << 30
        else:
            break
        if position > 3:
            return 1 << 30
    return number


class _Sheet(_Target):
    """Rows of one worksheet, collected into ``ready`` as the XML streams by."""

    def __init__(
        self,
        limits: Limits,
        shared: _SharedStrings,
        date_styles: frozenset[int],
        date1904: bool,
    ):
        super().__init__(limits)
        self.shared = shared
        self.date_styles = date_styles
        self.epoch = _EXCEL_EPOCH_1904 if date1904 else _EXCEL_EPOCH
        self.ready: list[tuple[int, dict[int, Any]]] = []
        self.rows_seen = 0
        self.row = 0
        self.cells: dict[int, Any] = {}
        self.next_column = 1
        self.column = 0
        self.kind = "n"
        self.style = 0
        self.parts: list[str] = []
        self.length = 0
        self.collect = False
        self.phonetic = 0

    def on_start(self, name: str, attrib: dict[str, str]) -> None:
        if name == "c":
            ref = attrib.get("r")
            self.column = _column(ref) if ref else self.next_column
            self.kind = attrib.get("t", "n")
            style = attrib.get("s", "0")
            self.style = int(style) if style.isdigit() and len(style) < 7 else 0
            self.parts = []
            self.length = 0
        elif name == "v" or (name == "t" and not self.phonetic):
            self.collect = True
        elif name == "rPh":
            self.phonetic += 1
        elif name == "row":
            self.rows_seen += 1
            if self.rows_seen > self.limits.max_rows + 1:
                raise self.limits.too_many_rows()
            ref = attrib.get("r", "")
            number = int(ref) if ref.isdigit() and len(ref) < 10 else self.row + 1
            self.row = max(number, self.row + 1)
            self.cells = {}
            self.next_column = 1

    def data(self, text: str) -> None:
        if self.collect:
            self.length += len(text)
            if self.length > self.limits.max_cell_chars:
                raise self.limits.cell_too_long(self.row)
            self.parts.append(text)

    def on_end(self, name: str) -> None:
        if name in ("v", "t"):
            self.collect = False
        elif name == "rPh":
            self.phonetic -= 1
        elif name == "c":
            value = self._value("".join(self.parts))
            if value is not None and value != "":
                if self.column > self.limits.max_columns:
                    raise self.limits.too_many_columns()
                self.cells[self.column] = value
            self.next_column = self.column + 1
        elif name == "row":
            self.ready.append((self.row, self.cells))

    def _value(self, text: str) -> Any:
        kind = self.kind
        if kind == "s":
            if not text.strip().isdigit():
                return None
            value = self.shared.get(int(text))
            if len(value) > self.limits.max_cell_chars:
                raise self.limits.cell_too_long(self.row)
            return value
        if kind in ("inlineStr", "str", "e"):
            return text
        if kind == "b":
            return text.strip() in ("1", "true")
        if kind == "d":
            try:
                stamp = dt.datetime.fromisoformat(text.strip())
            except ValueError:
                return text
            return stamp
        text = text.strip()
        if not text:
            return None
        try:
            number: int | float = int(text) if text.lstrip("-").isdigit() else float(text)
        except ValueError:
            return text
        if self.style in self.date_styles and isinstance(number, int | float):
            try:
                stamp = self.epoch + dt.timedelta(days=float(number))
            except (OverflowError, ValueError):
                return number
            # Round to the second: Excel stores times as binary fractions of a day.
            return stamp.replace(microsecond=0) + dt.timedelta(
                seconds=round(stamp.microsecond / 1_000_000)
            )
        return number


def _part(base: str, target: str) -> str:
    if target.startswith("/"):
        return target.lstrip("/")
    return posixpath.normpath(posixpath.join(base, target))


def _rels_of(part: str) -> str:
    folder, name = posixpath.split(part)
    return posixpath.join(folder, "_rels", name + ".rels")


@contextmanager
def _open_workbook(path: Path, limits: Limits) -> Iterator[Table]:
    with path.open("rb") as handle:
        check_workbook_zip(handle, limits)  # again: the file may have been replaced
        handle.seek(0)
        try:
            book = zipfile.ZipFile(handle)
        except (zipfile.BadZipFile, ValueError, OSError):
            raise ImportFileError(_DAMAGED) from None
        with book:
            budget = _Budget(limits)
            members = set(book.namelist())

            def parsed(name: str, target: _Target) -> None:
                _parse_all(budget.stream(book, name), target)

            package = _Relationships(limits)
            if "_rels/.rels" in members:
                parsed("_rels/.rels", package)
            workbook_name = _part("", package.of_type(_REL_OFFICE_DOCUMENT) or "xl/workbook.xml")
            if workbook_name not in members:
                raise ImportFileError(_NOT_WORKBOOK)
            workbook = _WorkbookPart(limits)
            parsed(workbook_name, workbook)
            rels = _Relationships(limits)
            if _rels_of(workbook_name) in members:
                parsed(_rels_of(workbook_name), rels)
            base = posixpath.dirname(workbook_name)
            if not workbook.sheets:
                raise ImportFileError("The workbook has no sheet.")
            sheet_id = workbook.sheets[min(workbook.active, len(workbook.sheets) - 1)]
            sheet_name = _part(base, rels.by_id.get(sheet_id, ("", ""))[1])
            if sheet_name not in members:
                raise ImportFileError("The workbook's first sheet is missing; save it again.")
            shared = _SharedStrings(limits)
            shared_name = rels.of_type(_REL_SHARED_STRINGS)
            if shared_name and _part(base, shared_name) in members:
                parsed(_part(base, shared_name), shared)
            styles = _Styles(limits)
            styles_name = rels.of_type(_REL_STYLES)
            if styles_name and _part(base, styles_name) in members:
                parsed(_part(base, styles_name), styles)
            sheet = _Sheet(limits, shared, styles.date_styles(), workbook.date1904)
            rows = _sheet_rows(budget.stream(book, sheet_name), sheet)
            first = next(rows, None)
            if first is None or first[0] != 1 or not first[1]:
                raise ImportFileError("The first row must hold the column names; it is empty.")
            width = max(first[1])
            if width > limits.max_columns:
                raise limits.too_many_columns()
            headers = clean_headers(first[1].get(c) for c in range(1, width + 1))
            yield Table(headers, _workbook_rows(rows, len(headers), limits))


def _sheet_rows(chunks: Iterator[bytes], sheet: _Sheet) -> Iterator[tuple[int, dict[int, Any]]]:
    for _ in _parse(chunks, sheet):
        if sheet.ready:
            ready, sheet.ready = sheet.ready, []
            yield from ready
    yield from sheet.ready


def _workbook_rows(
    rows: Iterator[tuple[int, dict[int, Any]]], width: int, limits: Limits
) -> Iterator[tuple[int, tuple[Any, ...]]]:
    for number, cells in rows:
        if not cells:
            continue
        values = [cells.get(c) for c in range(1, max(cells) + 1)]
        yield number, _fitted(number, values, width, limits)


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
