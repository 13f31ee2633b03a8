"""The attachment of a scheduled report: a PDF (fpdf2) or the XLSX the report page
downloads. Counts and rates only, like every report download (``reporting/exports.py``).

fpdf2's built-in fonts cover Latin-1, so text outside it (a campaign named in another
script) is written with "?" in its place rather than failing the whole report; the XLSX
keeps every character.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from reporting import chart_figures, exports, reports

PDF_ROWS = 40  # split rows in the PDF; the XLSX has all of them
_PLAIN = str.maketrans(
    {"\u2192": "->", "\u2026": "...", "\u2013": "-", "\u2014": "-", "\u201c": '"', "\u201d": '"'}
)


def _latin1(text: Any) -> str:
    return str(text).translate(_PLAIN).encode("latin-1", "replace").decode("latin-1")


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def report_pdf(
    *,
    title: str,
    period: tuple[dt.date, dt.date],
    counting: reports.Counting,
    total: reports.Row,
    funnel: chart_figures.Chart | None,
    split_label: str,
    rows: Sequence[reports.Row],
    time_zone: str,
) -> bytes:
    """A one-to-few page PDF: totals, the funnel and the split table."""
    # heavy import, needed only when a scheduled PDF is written
    from fpdf import FPDF

    pdf = FPDF(orientation="landscape", format="A4")
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, _latin1(title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    start, end = period
    pdf.multi_cell(
        0,
        5,
        _latin1(
            f"Messages queued {start:%d %b %Y} to {end:%d %b %Y} ({time_zone}). "
            f"Counting {counting.describe()}."
        ),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(2)
    _table(
        pdf,
        ["Sent", "Delivered", "Bounced", "Opened", "Clicked", "Open rate", "CTR", "Unsubscribes"],
        [
            [
                f"{total.sent:,}",
                f"{total.delivered:,}",
                f"{total.bounced:,}",
                f"{total.opened:,}",
                f"{total.clicked:,}",
                _percent(total.open_rate),
                _percent(total.click_rate),
                f"{total.unsubscribed:,}",
            ]
        ],
        heading="Totals",
    )
    if funnel is not None:
        _table(
            pdf,
            funnel.headings,
            [
                [name, f"{count:,}", _percent(before), _percent(first)]
                for name, count, before, first in funnel.rows
            ],
            heading=funnel.title,
        )
    body = [
        [
            row.label,
            f"{row.sent:,}",
            f"{row.delivered:,}",
            f"{row.opened:,}",
            f"{row.opened_automated:,}",
            f"{row.clicked:,}",
            _percent(row.open_rate),
            _percent(row.click_rate),
        ]
        for row in rows[:PDF_ROWS]
    ]
    _table(
        pdf,
        [
            split_label,
            "Sent",
            "Delivered",
            "Opened",
            "Opened: automated only",
            "Clicked",
            "Open rate",
            "CTR",
        ],
        body or [["No messages in this period.", "", "", "", "", "", "", ""]],
        heading=f"By {split_label.lower()}",
        first_width=3,
    )
    if len(rows) > PDF_ROWS:
        pdf.set_font("Helvetica", "I", 9)
        pdf.cell(0, 6, f"First {PDF_ROWS} of {len(rows)} rows; the XLSX format has all of them.")
    return bytes(pdf.output())


def _table(
    pdf: Any,
    headings: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    heading: str,
    first_width: int = 1,
) -> None:
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 9, _latin1(heading), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    widths = (first_width, *([1] * (len(headings) - 1)))
    with pdf.table(col_widths=widths, text_align="LEFT", first_row_as_headings=True) as table:
        for values in [headings, *rows]:
            line = table.row()
            for value in values:
                line.cell(_latin1(value))
    pdf.ln(3)


def report_xlsx(
    *,
    title: str,
    counting: reports.Counting,
    total: reports.Row,
    split_label: str,
    rows: Sequence[reports.Row],
) -> bytes:
    """The report page's XLSX download for the period (every row, an "About" sheet)."""
    return exports.to_xlsx(
        rows, split_label=split_label, total=total, title=title, counting=counting
    )
