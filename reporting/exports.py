"""CSV and XLSX downloads of a split report.

Counts and rates only — no contact, no address, nothing per person. Text cells that a
spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab or
carriage return: OWASP "CSV injection") are prefixed with an apostrophe; numbers are
written as numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from reporting.chart_figures import Chart
from reporting.reports import COLUMNS, RATE_COLUMNS, Counting, Row

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralize(value: Any) -> Any:
    """Make a text cell inert in spreadsheets; numbers and None pass unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _header(split_label: str, counting: Counting | None = None) -> list[str]:
    """The column names; with ``counting``, the counted columns say which events count
    ("Opened (unique, counted: human only)"), so a file states its switch position."""
    headings = [heading for _, heading in COLUMNS]
    if counting is not None:
        scope = "human only" if counting.exclude_automated else "all events"
        headings = [heading.replace(", counted)", f", counted: {scope})") for heading in headings]
    return [split_label, *headings]


def _cells(row: Row) -> list[Any]:
    cells: list[Any] = [neutralize(row.label)]
    for name, _ in COLUMNS:
        value = row.value(name)
        if name in RATE_COLUMNS:
            value = None if value is None else round(float(value), 4)
        cells.append(value)
    return cells


def to_csv(
    rows: Sequence[Row],
    *,
    split_label: str,
    total: Row | None = None,
    counting: Counting | None = None,
) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(_header(split_label, counting))
    for row in rows:
        writer.writerow(["" if cell is None else cell for cell in _cells(row)])
    if total is not None:
        writer.writerow(["" if cell is None else cell for cell in _cells(total)])
    # A BOM so spreadsheet programs read the UTF-8 (subjects, domains) correctly.
    return ("\ufeff" + buffer.getvalue()).encode()


def to_xlsx(
    rows: Sequence[Row],
    *,
    split_label: str,
    total: Row | None = None,
    title: str = "Report",
    counting: Counting | None = None,
) -> bytes:
    # heavy import, needed only when an .xlsx file is written
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook(write_only=False)
    sheet = workbook.active
    assert sheet is not None
    sheet.title = title[:31]
    sheet.append(_header(split_label, counting))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    rate_columns = [i + 2 for i, (name, _) in enumerate(COLUMNS) if name in RATE_COLUMNS]
    for row in [*rows, *([total] if total is not None else [])]:
        sheet.append(_cells(row))
        current = sheet.max_row
        # Text is stored as text: openpyxl would otherwise treat "=…" as a formula.
        label = sheet.cell(row=current, column=1)
        label.data_type = "s"
        for column in rate_columns:
            sheet.cell(row=current, column=column).number_format = "0.0%"
    if total is not None:
        for cell in sheet[sheet.max_row]:
            cell.font = Font(bold=True)
    sheet.freeze_panes = "B2"
    sheet.column_dimensions["A"].width = 40
    if counting is not None:
        about = workbook.create_sheet("About")
        about.append(["Events counted", counting.describe()])
        switch = "human only" if counting.exclude_automated else "include automated"
        about.append(["Switch", switch])
        about.append(
            [
                "Note",
                "Opened/clicked/opens/clicks (counted) follow the switch; the human, unknown, "
                "privacy-proxy and automated columns are always shown side by side.",
            ]
        )
        about.column_dimensions["A"].width = 18
        about.column_dimensions["B"].width = 100
    output = io.BytesIO()
    workbook.save(output)
    return output.getvalue()


def chart_to_csv(chart: Chart) -> bytes:
    """A chart's table (what its table view shows) as CSV."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(chart.headings)
    for row in chart.rows:
        writer.writerow(["" if cell is None else neutralize(cell) for cell in row])
    return ("\ufeff" + buffer.getvalue()).encode()


def chart_to_xlsx(charts: Sequence[Chart]) -> bytes:
    """One sheet per chart, its table with rates formatted as percentages."""
    # heavy import, needed only when an .xlsx file is written
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    first = workbook.active
    assert first is not None
    workbook.remove(first)
    for chart in charts:
        sheet = workbook.create_sheet(_sheet_title(chart.title, workbook.sheetnames))
        sheet.append(chart.headings)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in chart.rows:
            sheet.append([neutralize(cell) for cell in row])
            current = sheet.max_row
            for index in chart.rate_columns:
                sheet.cell(row=current, column=index + 1).number_format = "0.0%"
        sheet.column_dimensions["A"].width = 32
    if not workbook.sheetnames:
        workbook.create_sheet("No data").append(["No messages match these filters."])
    output = io.BytesIO()
    workbook.save(output)
    return output.getvalue()


def _sheet_title(title: str, taken: list[str]) -> str:
    # Excel: at most 31 characters, none of []:*?/\ and unique in the workbook.
    clean = "".join(" " if char in "[]:*?/\\" else char for char in title)[:28].strip()
    name, number = clean or "Chart", 2
    while name in taken:
        name = f"{clean[:25]} {number}"
        number += 1
    return name
