"""Plotly figures for the report pages, built on the server and passed to the page as JSON,
each with the table it draws (the page's table view and the chart's CSV/XLSX download).
The palette, shared layout, day axis and the :class:`Chart` record are in
``reporting/chart_figures.py``.

The page embeds each figure with ``json_script`` (a ``<script type="application/json">``
element, not executed) and ``static/js/reports.js`` draws it with the vendored
plotly.js; no inline script or style, so the CSP stays ``'self'``.

Readability rules every figure follows (issue #20): it fills the width of the page (the
page gives each chart its own row); the legend sits above the plot, outside it, so it
never covers a bar or a line (plotly grows the top margin to fit it); the title is the
HTML heading above the chart, not drawn inside it; day axes are local dates of the
organization's time zone, labelled and hovered as days (never "00:00:00"); hovering
shows the count and the rate it stands for.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from reporting.chart_figures import (
    DAY_MS,
    HUMAN,
    LABEL_COLORS,
    LABEL_NAMES,
    LIGHT,
    NEUTRAL,
    Chart,
    bar_trace,
    base_layout,
    day_axis,
    figure_json,
    rate,
    rate_text,
)
from reporting.reports import Counting, Row

MULTIPLES_SHOWN = 12  # small multiples: the first values of the split (the table has all)
MULTIPLES_COLUMNS = 3


def timeseries(
    rows: Sequence[Row], *, counting: Counting | None = None, time_zone: str = "UTC"
) -> dict[str, Any] | None:
    """Sent, delivered, opened and clicked per local day the messages were queued; the
    hover gives each count with its rate (delivered of sent, opened and clicked of
    delivered). "Opened" and "Clicked" follow the switch."""
    if not rows:
        return None
    ordered = sorted(rows, key=lambda row: row.key)
    days = [row.key for row in ordered]
    series = (
        ("Sent", [r.sent for r in ordered], [""] * len(ordered), LIGHT, "solid"),
        (
            "Delivered",
            [r.delivered for r in ordered],
            [rate_text(r.delivered, r.sent, "sent") for r in ordered],
            NEUTRAL,
            "solid",
        ),
        (
            "Opened",
            [r.opened for r in ordered],
            [rate_text(r.opened, r.delivered, "delivered") for r in ordered],
            HUMAN,
            "solid",
        ),
        (
            "Clicked",
            [r.clicked for r in ordered],
            [rate_text(r.clicked, r.delivered, "delivered") for r in ordered],
            HUMAN,
            "dot",
        ),
    )
    scope = (
        "" if counting is None else f" ({'human only' if counting.exclude_automated else 'all'})"
    )
    traces = [
        {
            "type": "scatter",
            "x": days,
            "y": values,
            "name": name + (scope if name in ("Opened", "Clicked") else ""),
            "mode": "lines+markers",
            "line": {"color": color, "dash": dash},
            "customdata": hover,
            "hovertemplate": "%{y:,} %{customdata}<extra>%{fullData.name}</extra>",
        }
        for name, values, hover, color, dash in series
    ]
    return figure_json(
        traces,
        base_layout(
            hovermode="x unified",
            xaxis=day_axis(days, time_zone=time_zone, what="Day queued"),
        ),
    )


def timeseries_chart(rows: Sequence[Row], *, counting: Counting, time_zone: str) -> Chart | None:
    figure = timeseries(rows, counting=counting, time_zone=time_zone)
    if figure is None:
        return None
    ordered = sorted(rows, key=lambda row: row.key)
    return Chart(
        name="timeseries",
        title="Messages by day queued",
        description="Sent, delivered, opened and clicked per day the messages were queued",
        figure=figure,
        headings=["Day", "Sent", "Delivered", "Opened", "Clicked", "Open rate", "Click rate"],
        rows=[
            [r.key, r.sent, r.delivered, r.opened, r.clicked, r.open_rate, r.click_rate]
            for r in ordered
        ],
        rate_columns=frozenset({5, 6}),
    )


def opened_by_label_chart(rows: Sequence[Row], *, time_zone: str) -> Chart | None:
    """Unique opens per day queued, human / unknown / privacy proxy / automated stacked:
    how much of "opened" people did, whatever the switch says."""
    ordered = [row for row in sorted(rows, key=lambda row: row.key) if row.delivered]
    if not ordered:
        return None
    days = [row.key for row in ordered]
    traces = []
    for label in ("human", "unknown", "privacy_proxy", "automated"):
        values = [row.metrics[f"opened_{label}"] for row in ordered]
        hover = [
            rate_text(value, row.delivered, "delivered")
            for value, row in zip(values, ordered, strict=True)
        ]
        traces.append(
            bar_trace(
                days,
                values,
                f"Opened: {LABEL_NAMES[label]}",
                LABEL_COLORS[label],
                hover,
                width=0.6 * DAY_MS,  # on a date axis a bar is as wide as this (ms)
            )
        )
    figure = figure_json(
        traces,
        base_layout(
            barmode="stack",
            hovermode="x unified",
            xaxis=day_axis(days, time_zone=time_zone, what="Day queued"),
        ),
    )
    return Chart(
        name="opened-by-label",
        title="Who opened: human and automated, stacked",
        description="Unique opened messages per day queued, human, unknown, privacy-proxy "
        "only and automated only stacked",
        figure=figure,
        headings=[
            "Day",
            "Delivered",
            "Opened: human",
            "Opened: unknown",
            "Opened: privacy proxy only",
            "Opened: automated only",
        ],
        rows=[
            [
                r.key,
                r.delivered,
                r.opened_human,
                r.opened_unknown,
                r.opened_privacy_proxy,
                r.opened_automated,
            ]
            for r in ordered
        ],
    )


def activity(
    events: Sequence[tuple[dt.date, str, str, int]], *, time_zone: str = "UTC"
) -> dict[str, Any] | None:
    """Opens and clicks by the local day they happened, human and automated stacked (opens
    and clicks side by side); the hover gives each label's share of that day's events."""
    if not events:
        return None
    series: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    per_kind: dict[tuple[str, str], int] = defaultdict(int)
    days = sorted({day.isoformat() for day, _, _, _ in events})
    for day, kind, label, count in events:
        series[(kind, label)][day.isoformat()] = count
        per_kind[(kind, day.isoformat())] += count
    traces = []
    for kind in ("open", "click"):
        for label in ("human", "unknown", "privacy_proxy", "automated"):
            values = series.get((kind, label))
            if not values:
                continue
            counts = [values.get(day, 0) for day in days]
            hover = [
                rate_text(count, per_kind[(kind, day)], f"{kind}s that day")
                for count, day in zip(counts, days, strict=True)
            ]
            traces.append(
                bar_trace(
                    days,
                    counts,
                    f"{kind.capitalize()}s: {label.replace('_', ' ')}",
                    LABEL_COLORS[label],
                    hover,
                    marker={"pattern": {"shape": "/" if kind == "click" else ""}},
                    offsetgroup=kind,
                    # On a date axis a bar's width and offset are milliseconds; with an
                    # explicit width plotly does not place the groups, so opens go left
                    # of the day's centre and clicks right, each stack on its own.
                    width=0.4 * DAY_MS,
                    offset=(-0.42 if kind == "open" else 0.02) * DAY_MS,
                )
            )
    return figure_json(
        traces,
        base_layout(
            barmode="stack",
            xaxis=day_axis(days, time_zone=time_zone, what="Day of the event"),
        ),
    )


def activity_chart(
    events: Sequence[tuple[dt.date, str, str, int]], *, time_zone: str
) -> Chart | None:
    figure = activity(events, time_zone=time_zone)
    if figure is None:
        return None
    return Chart(
        name="activity",
        title="Opens and clicks by day they happened",
        description="Opens and clicks per day they happened, human and automated stacked",
        figure=figure,
        headings=["Day", "Kind", "Label", "Events"],
        rows=[
            [day.isoformat(), kind, LABEL_NAMES.get(label, label), count]
            for day, kind, label, count in events
        ],
    )


def funnel_chart(total: Row, *, human_only: bool) -> Chart | None:
    """Queued → delivered → opened → clicked as horizontal bars (a funnel read top down);
    human opens and clicks only unless the view includes automated events. Each bar's
    hover and text give its share of the step before and of the first step."""
    if not total.messages:
        return None
    opened = total.opened_human if human_only else total.opened
    clicked = total.clicked_human if human_only else total.clicked
    scope = "human" if human_only else "all events"
    steps = [
        ("Queued", total.messages),
        ("Delivered", total.delivered),
        (f"Opened ({scope})", opened),
        (f"Clicked ({scope})", clicked),
    ]
    rows: list[list[Any]] = []
    previous = total.messages
    for name, count in steps:
        rows.append([name, count, rate(count, previous), rate(count, total.messages)])
        previous = count
    text = [
        f"{count:,}" + ("" if of_first is None else f" · {of_first * 100:.1f} %")
        for _, count, _, of_first in rows
    ]
    hover = [
        "—" if of_previous is None else f"{of_previous * 100:.1f} % of the step before"
        for _, _, of_previous, _ in rows
    ]
    names = [name for name, _ in steps]
    trace = {
        "type": "bar",
        "y": names,
        "x": [count for _, count in steps],
        "orientation": "h",
        "marker": {"color": [LIGHT, NEUTRAL, HUMAN, HUMAN]},
        "text": text,
        "textposition": "auto",
        "customdata": hover,
        "hovertemplate": "%{y}: %{x:,} · %{customdata}<extra></extra>",
        "showlegend": False,
    }
    figure = figure_json(
        [trace],
        base_layout(
            height=260,
            margin={"l": 150, "r": 16, "t": 8, "b": 40},
            yaxis={"autorange": "reversed", "automargin": True},
            xaxis={"rangemode": "tozero", "separatethousands": True, "title": {"text": "Messages"}},
        ),
    )
    return Chart(
        name="funnel",
        title=f"Funnel: queued → delivered → opened → clicked ({scope})",
        description=f"Funnel of messages: queued, delivered, opened and clicked ({scope})",
        figure=figure,
        headings=["Step", "Messages", "Share of the step before", "Share of queued"],
        rows=rows,
        rate_columns=frozenset({2, 3}),
    )


def multiples_chart(rows: Sequence[Row], *, split_label: str) -> Chart | None:
    """Small multiples: one small panel per value of the split (the first
    :data:`MULTIPLES_SHOWN`), each the same stacked human / unknown / privacy proxy /
    automated bars for opened and clicked, on one shared scale so panels compare."""
    shown = [row for row in rows if row.messages][:MULTIPLES_SHOWN]
    if not shown:
        return None
    labels = [row.label if len(row.label) <= 32 else row.label[:31] + "…" for row in shown]
    columns = min(len(shown), MULTIPLES_COLUMNS)
    grid_rows = math.ceil(len(shown) / MULTIPLES_COLUMNS)
    h_gap, v_gap = 0.05, min(0.12, 0.5 / grid_rows)
    width = (1 - (columns - 1) * h_gap) / columns
    height_share = (1 - (grid_rows - 1) * v_gap) / grid_rows
    # The panel titles sit just above each panel, so the legend goes above the first
    # row's titles: a fixed top margin, and the legend that many pixels above the plot.
    height = max(300, 200 * grid_rows + 120)
    top, bottom = 72, 40
    layout = base_layout(
        barmode="stack", height=height, margin={"l": 56, "r": 16, "t": top, "b": bottom}
    )
    layout["legend"]["y"] = 1 + 30 / (height - top - bottom)
    annotations: list[dict[str, Any]] = []
    traces: list[dict[str, Any]] = []
    table: list[list[Any]] = []
    for index, row in enumerate(shown):
        column, line = index % MULTIPLES_COLUMNS, index // MULTIPLES_COLUMNS
        suffix = "" if index == 0 else str(index + 1)
        left = column * (width + h_gap)
        upper = 1 - line * (height_share + v_gap)
        layout[f"xaxis{suffix}"] = {"domain": [left, left + width], "anchor": f"y{suffix}"}
        layout[f"yaxis{suffix}"] = {
            "domain": [max(upper - height_share, 0), upper],
            "anchor": f"x{suffix}",
            "rangemode": "tozero",
            "separatethousands": True,
            **({} if index == 0 else {"matches": "y"}),  # one scale: panels compare
            **({} if column == 0 else {"showticklabels": False}),
        }
        annotations.append(
            {
                # plotly.js reads text as a subset of HTML: a label is escaped, never markup
                "text": html.escape(labels[index]),
                "x": left + width / 2,
                "y": upper,
                "xref": "paper",
                "yref": "paper",
                "xanchor": "center",
                "yanchor": "bottom",
                "showarrow": False,
                "font": {"size": 13},
            }
        )
        for label in ("human", "unknown", "privacy_proxy", "automated"):
            counts = [row.metrics[f"opened_{label}"], row.metrics.get(f"clicked_{label}", 0)]
            traces.append(
                bar_trace(
                    ["Opened", "Clicked"],
                    counts,
                    LABEL_NAMES[label].capitalize(),
                    LABEL_COLORS[label],
                    [rate_text(count, row.delivered, "delivered") for count in counts],
                    legendgroup=label,
                    showlegend=index == 0,
                    xaxis=f"x{suffix}",
                    yaxis=f"y{suffix}",
                )
            )
        table.append(
            [
                row.label,
                row.delivered,
                row.opened_human,
                row.opened_unknown,
                row.opened_privacy_proxy,
                row.opened_automated,
                row.clicked_human,
                row.clicked_unknown,
                row.clicked_automated,
            ]
        )
    layout["annotations"] = annotations
    result = figure_json(traces, layout)
    return Chart(
        name="split",
        title=f"Human and automated engagement by {split_label.lower()}",
        description=f"Small multiples: opened and clicked, human and automated stacked, one "
        f"panel per {split_label.lower()}",
        figure=result,
        headings=[
            split_label,
            "Delivered",
            "Opened: human",
            "Opened: unknown",
            "Opened: privacy proxy only",
            "Opened: automated only",
            "Clicked: human",
            "Clicked: unknown",
            "Clicked: automated only",
        ],
        rows=table,
    )
