"""The building blocks every report chart is made of (``reporting/charts.py`` builds the
charts from them): the palette, the shared plotly.js layout, the local-day axis, a bar
trace with a rate in its hover, the plain figure JSON, and :class:`Chart`, the record a
report page, a chart download (``reporting/exports.py``) and a scheduled report
(``reporting/schedule_documents.py``) take.

The readability rules of the module docstring of ``reporting/charts.py`` live here: the
legend above the plot, outside it; no title inside the figure; day axes labelled as
local days of the organization's time zone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

HUMAN = "#1f6f5c"
AUTOMATED = "#c2410c"
UNKNOWN = "#6b6b78"
PRIVACY_PROXY = "#a16207"
NEUTRAL = "#3b5b92"
LIGHT = "#9db4d9"
DAY_MS = 86_400_000  # date axes count in milliseconds
LABEL_COLORS = {
    "human": HUMAN,
    "unknown": UNKNOWN,
    "privacy_proxy": PRIVACY_PROXY,
    "automated": AUTOMATED,
}
LABEL_NAMES = {
    "human": "human",
    "unknown": "unknown",
    "privacy_proxy": "privacy proxy only",
    "automated": "automated only",
}


@dataclass
class Chart:
    """One chart of a report page: its figure and the table it draws.

    ``headings`` and ``rows`` are the table view and the chart's CSV/XLSX download:
    counts and rates only (a rate is a fraction, ``None`` when undefined)."""

    name: str
    title: str
    description: str
    figure: dict[str, Any]
    headings: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    rate_columns: frozenset[int] = frozenset()

    @property
    def element_id(self) -> str:
        return f"chart-{self.name}"


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def rate_text(part: int, whole: int, of: str) -> str:
    share = rate(part, whole)
    return "—" if share is None else f"{share * 100:.1f} % of {of}"


def base_layout(**extra: Any) -> dict[str, Any]:
    """Shared layout: no title inside the plot (the page has the heading), the legend
    above the plot area (yanchor bottom at y=1: outside, plotly grows the margin)."""
    return {
        "margin": {"l": 56, "r": 16, "t": 8, "b": 48},
        "height": 340,
        "legend": {
            "orientation": "h",
            "x": 0,
            "xanchor": "left",
            "y": 1.02,
            "yanchor": "bottom",
            "traceorder": "normal",  # stacked bars: keep the order the traces were given
        },
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif"},
        "hoverlabel": {"namelength": -1},
        "yaxis": {"rangemode": "tozero", "separatethousands": True},
        **extra,
    }


def day_axis(days: Sequence[str], *, time_zone: str, what: str) -> dict[str, Any]:
    """A date axis that labels days (not hours) however few points there are; the
    values are local dates in the organization's time zone, and the axis says so."""
    axis: dict[str, Any] = {
        "type": "date",
        "tickformat": "%b %d",
        "hoverformat": "%a %b %d, %Y",
        "title": {"text": f"{what} ({time_zone})"},
    }
    if len(days) <= 31:
        axis["dtick"] = DAY_MS
    if len(days) == 1:
        day = dt.date.fromisoformat(days[0])
        axis["range"] = [
            (day - dt.timedelta(days=1)).isoformat(),
            (day + dt.timedelta(days=1)).isoformat(),
        ]
    return axis


def figure_json(data: list[dict[str, Any]], layout: dict[str, Any]) -> dict[str, Any]:
    # Plain plotly.js figure JSON: plotly.py's validating graph objects cost most of the
    # report page's server time (docs/performance.md, "Report page") and add nothing
    # the browser needs.
    return {"data": data, "layout": layout}


def bar_trace(
    x: list[Any], y: list[int], name: str, color: str, hover: list[str], **extra: Any
) -> dict[str, Any]:
    return {
        "type": "bar",
        "x": x,
        "y": y,
        "name": name,
        "marker": {"color": color, **extra.pop("marker", {})},
        "customdata": hover,
        "hovertemplate": "%{y:,} · %{customdata}<extra>%{fullData.name}</extra>",
        **extra,
    }
