"""Hostile import files, generated (never committed): zip bombs, entity tricks, giants.

Used by ``contacts/tests/test_import_hostile.py`` and ``bench/import.py``. Each case
names the file, builds its bytes, gives the message the import must show and any
settings the child process should run with.
"""

from __future__ import annotations

import base64
import io
import random
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"

CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Default Extension="rels" '
    b'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    b'<Default Extension="xml" ContentType="application/xml"/>'
    b'<Override PartName="/xl/workbook.xml" ContentType="application/'
    b'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    b'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
    b'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    b"</Types>"
)
SHARED_OVERRIDE = (
    b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
    b'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
)
PACKAGE_RELS = (
    f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PKG_REL}">'
    f'<Relationship Id="rId1" Type="{REL}/officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>"
).encode()
WORKBOOK = (
    f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{MAIN}" xmlns:r="{REL}">'
    '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
).encode()


def workbook_rels(shared: bool) -> bytes:
    extra = (
        f'<Relationship Id="rId2" Type="{REL}/sharedStrings" Target="sharedStrings.xml"/>'
        if shared
        else ""
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PKG_REL}">'
        f'<Relationship Id="rId1" Type="{REL}/worksheet" Target="worksheets/sheet1.xml"/>'
        f"{extra}</Relationships>"
    ).encode()


def sheet(rows: bytes, prolog: bytes = b'<?xml version="1.0" encoding="UTF-8"?>') -> bytes:
    return (
        prolog
        + f'<worksheet xmlns="{MAIN}"><sheetData>'.encode()
        + rows
        + b"</sheetData></worksheet>"
    )


def inline(ref: str, text: str) -> bytes:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'.encode()


HEADER_ROW = b'<row r="1">' + inline("A1", "Email") + b"</row>"


def workbook(
    sheet_xml: bytes,
    shared_xml: bytes | Iterable[bytes] | None = None,
    extra: dict[str, bytes] | None = None,
) -> bytes:
    """A minimal .xlsx: content types, relationships, one sheet, maybe shared strings."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as book:
        types = CONTENT_TYPES
        if shared_xml is not None:
            types = types.replace(b"</Types>", SHARED_OVERRIDE + b"</Types>")
        book.writestr("[Content_Types].xml", types)
        book.writestr("_rels/.rels", PACKAGE_RELS)
        book.writestr("xl/workbook.xml", WORKBOOK)
        book.writestr("xl/_rels/workbook.xml.rels", workbook_rels(shared_xml is not None))
        book.writestr("xl/worksheets/sheet1.xml", sheet_xml)
        if isinstance(shared_xml, bytes):
            book.writestr("xl/sharedStrings.xml", shared_xml)
        elif shared_xml is not None:  # streamed: a bomb never sits in memory expanded
            with book.open("xl/sharedStrings.xml", "w") as member:
                for chunk in shared_xml:
                    member.write(chunk)
        for name, data in (extra or {}).items():
            book.writestr(name, data)
    return out.getvalue()


def shared_strings(items: bytes, count: int, prolog: bytes = b"") -> bytes:
    return (
        prolog
        + f'<sst xmlns="{MAIN}" count="{count}" uniqueCount="{count}">'.encode()
        + items
        + b"</sst>"
    )


_SHARED_HEADER_SHEET = sheet(b'<row r="1"><c r="A1" t="s"><v>0</v></c></row>')


def zip_bomb_shared_strings(megabytes: int = 150) -> bytes:
    """~1 KB per string, repeated: ~150 MB of XML in a few hundred KB of zip."""
    count = megabytes * 1024

    def chunks() -> Iterator[bytes]:
        yield f'<sst xmlns="{MAIN}" count="{count}" uniqueCount="{count}">'.encode()
        block = (b"<si><t>" + b"A" * 1000 + b"</t></si>") * 1024
        for _ in range(megabytes):
            yield block
        yield b"</sst>"

    return workbook(_SHARED_HEADER_SHEET, chunks())


_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{n} "{("&lol" + (str(n - 1) if n > 1 else "") + ";") * 10}">'.encode()
        for n in range(1, 10)
    )
    + b"]>"
)


def billion_laughs_sheet() -> bytes:
    return workbook(sheet(b'<row r="1">' + inline("A1", "&lol9;") + b"</row>", prolog=_LAUGHS))


def billion_laughs_shared_strings() -> bytes:
    return workbook(_SHARED_HEADER_SHEET, shared_strings(b"<si><t>&lol9;</t></si>", 1, _LAUGHS))


def external_entity() -> bytes:
    prolog = b'<?xml version="1.0"?><!DOCTYPE sst [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    return workbook(_SHARED_HEADER_SHEET, shared_strings(b"<si><t>&xxe;</t></si>", 1, prolog))


def many_rows(count: int = 250_002) -> bytes:
    rows = b"".join(
        f'<row r="{i}"><c r="A{i}"><v>{i}</v></c></row>'.encode() for i in range(2, count + 2)
    )
    return workbook(sheet(HEADER_ROW + rows))


def many_columns(count: int = 20_000) -> bytes:
    cells = b"".join(inline(f"{_letters(i)}1", f"c{i}") for i in range(1, count + 1))
    return workbook(sheet(b'<row r="1">' + cells + b"</row>"))


def _letters(number: int) -> str:
    name = ""
    while number:
        number, rest = divmod(number - 1, 26)
        name = chr(65 + rest) + name
    return name


def huge_cell(chars: int = 4 * 1024 * 1024) -> bytes:
    """One cell of random text (incompressible, so the ratio check does not catch it)."""
    text = base64.b64encode(random.Random(1).randbytes(chars * 3 // 4)).decode()
    return workbook(sheet(HEADER_ROW + b'<row r="2">' + inline("A2", text) + b"</row>"))


def deep_nesting(depth: int = 100_000) -> bytes:
    return workbook(sheet(b'<row r="1">' + b"<x>" * depth + b"</x>" * depth + b"</row>"))


def not_a_zip() -> bytes:
    return b"%PDF-1.4\n" + b"0" * 4096


def many_members(count: int = 5000) -> bytes:
    return workbook(sheet(HEADER_ROW), extra={f"xl/media/image{i}.bin": b"" for i in range(count)})


def csv_enormous_line(megabytes: int = 30) -> bytes:
    return b"email," + b"x" * (megabytes * 1024 * 1024) + b"\nx@example.org,1\n"


@dataclass(frozen=True)
class Case:
    name: str
    filename: str
    build: Callable[[], bytes]
    message: str
    env: dict[str, str] = field(default_factory=dict)


CASES = [
    Case(
        "zip bomb in sharedStrings",
        "bomb.xlsx",
        zip_bomb_shared_strings,
        "compressed more than 100 to 1",
    ),
    Case(
        "zip bomb in sharedStrings, upload ratio check off",
        "bomb.xlsx",
        zip_bomb_shared_strings,
        "texts take more than 64 MB",
        {"LUXMAIL_IMPORT_MAX_RATIO": "100000000"},
    ),
    Case(
        "zip bomb past the expanded-size cap",
        "bomb.xlsx",
        lambda: zip_bomb_shared_strings(260),
        "expands to more than 200 MB",
        {"LUXMAIL_IMPORT_MAX_RATIO": "100000000"},
    ),
    Case("billion laughs in sheet XML", "laughs.xlsx", billion_laughs_sheet, "a DTD, entities"),
    Case(
        "billion laughs in sharedStrings",
        "laughs.xlsx",
        billion_laughs_shared_strings,
        "a DTD, entities",
    ),
    Case("external entity file:///etc/passwd", "xxe.xlsx", external_entity, "a DTD, entities"),
    Case("250,002 rows", "rows.xlsx", many_rows, "More than 250,000 rows"),
    Case("20,000 columns", "columns.xlsx", many_columns, "More than 200 columns"),
    Case("4 MB cell", "cell.xlsx", huge_cell, "longer than 32,767 characters"),
    Case("XML nested 100,000 deep", "deep.xlsx", deep_nesting, "nested more than 64 levels"),
    Case("not a zip, named .xlsx", "report.xlsx", not_a_zip, "not an Excel workbook"),
    Case("5,000 zip members", "members.xlsx", many_members, "more than 500 parts"),
    Case("CSV with one 30 MB line", "line.csv", csv_enormous_line, "Line 1 is longer than"),
]
