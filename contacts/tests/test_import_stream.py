"""The import's first pass keeps bounded state whatever the file's size."""

from __future__ import annotations

from contacts.imports.services.common import MAX_STORED_ERRORS
from contacts.imports.services.rows import _Scan, _Seen
from contacts.upsert import RowError


def test_duplicates_name_the_first_row_with_the_value():
    seen = _Seen()
    for row, value in enumerate(["a@x.org", "b@x.org", "a@x.org", "c@x.org", "a@x.org", "b@x.org"]):
        seen.add(value, row + 2)
    assert sorted(seen.duplicates()) == [(4, 2), (6, 2), (7, 3)]
    assert seen.keys.itemsize == 8 and seen.rows.itemsize <= 8  # compact arrays, not objects


def test_scan_keeps_the_lowest_rows_errors_and_counts_all():
    scan = _Scan()
    rows = 5 * MAX_STORED_ERRORS
    for number in range(rows + 1, 1, -1):  # worst case: discovered from the last row up
        scan.mark(number, [RowError(number, "email", "Email: not an address.")])
    scan.mark(3, [])  # no errors: nothing changes
    assert scan.error_count == rows
    assert scan.bad_rows == rows
    assert len(scan.errors) <= 2 * MAX_STORED_ERRORS
    stored = scan.error_dicts()
    assert len(stored) == MAX_STORED_ERRORS
    assert [e["row"] for e in stored] == list(range(2, MAX_STORED_ERRORS + 2))
    assert scan.is_bad(2) and not scan.is_bad(1) and not scan.is_bad(rows + 10)
