"""ICD-10-CM codes by code or description, for the condition picker (issue 20).

The code list is the CMS/NCHS ICD-10-CM tabular list (US government work, public
domain) as shipped inside the ``simple-icd-10-cm`` package (MIT licence; docs/
operations.md, "ICD-10-CM picker"). The package's own loader builds a tree of every
code and takes several seconds and ~90 MB; the picker needs only ``(code,
description)`` pairs, so this module streams the package's tabular XML once per process
with ``iterparse`` (1-2 s quiet, 6 s+ on a loaded machine, ~12 MB) and keeps a flat
list. The first parse writes that list as a compact tab-separated index under
``VAR_DIR/icd10/`` (named after the source file's name, size and time, so a new package
version gets a new index); later processes read the index instead (tens of
milliseconds). At start-up (``ContactsConfig.ready``) a missing index is built in a
background thread, so even the first search after an install is fast. Codes that exist only
through a 7th-character extension (injuries' initial/subsequent encounter) are not
listed: the picker offers the categories and subcategories the tabular list names.

Searching is a linear scan of ~47,000 short strings (a few milliseconds), bounded by
:data:`MAX_QUERY` characters and :data:`MAX_RESULTS` results.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
import threading
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import NamedTuple

from django.conf import settings

logger = logging.getLogger(__name__)

MAX_QUERY = 60
MAX_RESULTS = 20
DEFAULT_RESULTS = 10
_CODE_LIKE = re.compile(r"^[A-Za-z]\d[\dA-Za-z]?\.?[\dA-Za-z]{0,4}$")
_WORD = re.compile(r"[^\W_]+")

# Conditions population-health outreach selects most often rank first among equal
# matches ("diab" → E11.9 before the rarer diabetes codes).
COMMON = (
    "E11.9", "I10", "E78.5", "E66.9", "J45.909", "J44.9", "F32.A", "F41.1", "E03.9",
    "I25.10", "N18.3", "I48.91", "E11.65", "E10.9", "M17.9", "G47.33", "K21.9", "I50.9",
    "Z79.4", "O24.419",
)  # fmt: skip
_COMMON_RANK = {code: rank for rank, code in enumerate(COMMON)}


class Code(NamedTuple):
    code: str
    description: str
    billable: bool
    search_text: str  # description case-folded, for matching
    # A NamedTuple, not a frozen dataclass: building 47,000 of them is 3x faster.

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "description": self.description, "billable": self.billable}


_lock = threading.Lock()
_codes: list[Code] | None = None
_by_code: dict[str, Code] = {}


def _data_file() -> Path:
    """The package's tabular XML, found on ``sys.path`` without importing the package.

    Importing ``simple_icd_10_cm`` runs its own loader (seconds, ~90 MB).
    """
    found = sorted(
        path
        for entry in sys.path
        for path in (Path(entry or ".") / "simple_icd_10_cm" / "data").glob("icd10c-tabular-*.xml")
    )
    if not found:
        raise LookupError("simple-icd-10-cm is not installed or ships no tabular list")
    return found[-1]


INDEX_VERSION = 1


def index_path(source: Path | None = None) -> Path:
    """Where the compact index of ``source`` (the package's tabular XML) lives."""
    source = source or _data_file()
    stat = source.stat()
    name = f"{source.stem}-{stat.st_size}-{int(stat.st_mtime)}-v{INDEX_VERSION}.tsv"
    return Path(settings.VAR_DIR) / "icd10" / name


def _read_index(path: Path) -> list[Code] | None:
    """The codes in a compact index, or ``None`` if it is missing or damaged."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    found: list[Code] = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) != 3 or parts[1] not in ("0", "1") or not parts[0] or not parts[2]:
            return None
        found.append(Code(parts[0], parts[2], parts[1] == "1", parts[2].casefold()))
    return found or None


def _write_index(path: Path, found: list[Code]) -> None:
    """Write the index atomically (a temporary file renamed); a failure only logs."""
    body = "".join(f"{c.code}\t{int(c.billable)}\t{c.description}\n" for c in found)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".icd10-", suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(body)
        os.replace(temporary, path)
    except OSError as error:
        logger.warning("icd10: could not write the code index: %s", type(error).__name__)


def _load() -> list[Code]:
    source = _data_file()
    path = index_path(source)
    found = _read_index(path)
    if found is None:
        found = _parse(source)
        _write_index(path, found)
    return found


def warm_in_background() -> threading.Thread | None:
    """Build the compact index in a daemon thread if it does not exist yet."""
    try:
        if index_path().exists():
            return None
    except (LookupError, OSError):
        return None
    thread = threading.Thread(target=codes, name="icd10-index", daemon=True)
    thread.start()
    return thread


def _parse(source: Path) -> list[Code]:
    found: list[Code] = []
    open_diags: list[list[object]] = []
    for event, element in ET.iterparse(source, events=("start", "end")):  # noqa: S314
        if element.tag != "diag":
            continue
        if event == "start":
            open_diags.append([])
            continue
        children = open_diags.pop()
        name = element.findtext("name") or ""
        description = " ".join((element.findtext("desc") or "").split())
        if open_diags:
            open_diags[-1].append(name)
        if name and description:
            found.append(Code(name, description, not children, description.casefold()))
        element.clear()
    found.sort(key=lambda c: c.code)
    return found


def codes() -> list[Code]:
    """Every listed code, sorted; loaded on first use (thread-safe)."""
    global _codes
    if _codes is None:
        with _lock:
            if _codes is None:
                loaded = _load()
                _by_code.update({c.code: c for c in loaded})
                _codes = loaded
    return _codes


def describe(code: str) -> str | None:
    """The description of ``code`` (``E11.9``), or ``None`` if the list lacks it."""
    codes()
    found = _by_code.get(code.strip().upper())
    return found.description if found else None


def search(query: str, *, limit: int = DEFAULT_RESULTS) -> list[Code]:
    """Codes whose code starts with ``query`` or whose description has every word of it.

    A description word matches when it starts with the query word ("diab" matches
    "diabetes"). Ranked: code matches first, then common conditions, then billable
    codes, then shorter descriptions. ``query`` is cut to :data:`MAX_QUERY` characters
    and at most 6 words; ``limit`` to :data:`MAX_RESULTS`.
    """
    limit = max(1, min(int(limit), MAX_RESULTS))
    text = " ".join(query.split())[:MAX_QUERY].casefold()
    words = list(dict.fromkeys(_WORD.findall(text)))[:6]  # repeated words add nothing
    if not words:
        return []
    everything = codes()
    results: list[tuple[tuple[int, int, int, int, str], Code]] = []
    if _CODE_LIKE.match(text.replace(" ", "")):
        prefix = text.replace(" ", "").upper()
        if len(prefix) > 3 and "." not in prefix:
            prefix = f"{prefix[:3]}.{prefix[3:]}"
        for item in everything:
            if item.code.startswith(prefix):
                results.append(((0, len(item.code), 0, 0, item.code), item))
                if len(results) >= 200:
                    break
    patterns = [re.compile(r"\b" + re.escape(word)) for word in words]
    for item in everything:
        haystack = item.search_text
        if all(word in haystack for word in words) and all(p.search(haystack) for p in patterns):
            key = (
                1,
                _COMMON_RANK.get(item.code, len(COMMON)),
                0 if item.billable else 1,
                len(item.description),
                item.code,
            )
            results.append((key, item))
    results.sort(key=lambda pair: pair[0])
    seen: set[str] = set()
    out: list[Code] = []
    for _, item in results:
        if item.code not in seen:
            seen.add(item.code)
            out.append(item)
        if len(out) >= limit:
            break
    return out
