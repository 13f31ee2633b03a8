"""Plotly figures for the report page, built on the server and passed to the page as JSON.

The page embeds each figure with ``json_script`` (a ``<script type="application/json">``
element, not executed) and ``static/js/reports.js`` draws it with the vendored
plotly.js; no inline script or style, so the CSP stays ``'self'``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from reporting.reports import Counting, Row

HUMAN = "#1f6f5c"
AUTOMATED = "#c2410c"
UNKNOWN = "#7c7c8a"
PRIVACY_PROXY = "#a16207"
NEUTRAL = "#3b5b92"
LIGHT = "#9db4d9"
DAY_MS = 86_400_000  # date axes count in milliseconds


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title, "x": 0, "font": {"size": 15}},
        "margin": {"l": 48, "r": 12, "t": 40, "b": 40},
        "height": 320,
        "legend": {"orientation": "h", "y": -0.2},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif"},
        **extra,
    }


def _day_axis(days: Sequence[str]) -> dict[str, Any]:
    """A date axis that labels days (not hours) however few points there are."""
    axis: dict[str, Any] = {"type": "date", "tickformat": "%b %d"}
    if len(days) <= 31:
        axis["dtick"] = DAY_MS
    if len(days) == 1:
        day = dt.date.fromisoformat(days[0])
        axis["range"] = [
            (day - dt.timedelta(days=1)).isoformat(),
            (day + dt.timedelta(days=1)).isoformat(),
        ]
    return axis


def _figure(data: list[Any], layout: dict[str, Any]) -> dict[str, Any]:
    # plotly is heavy to import; only the report pages draw charts
    import plotly.graph_objects as go

    figure = go.Figure(data=data, layout=layout)
    result: dict[str, Any] = json.loads(figure.to_json())
    return result


def timeseries(rows: Sequence[Row], *, counting: Counting | None = None) -> dict[str, Any] | None:
    """Sent, delivered, opened and clicked per day the messages were queued. "Opened" and
    "Clicked" follow the switch; when it says human only, the messages that only a privacy
    proxy or only machines opened are drawn as their own series, not added to "Opened"."""
    # plotly is heavy to import; only the report pages draw charts
    import plotly.graph_objects as go

    if not rows:
        return None
    ordered = sorted(rows, key=lambda row: row.key)
    days = [row.key for row in ordered]
    mode = "lines+markers"
    traces = [
        go.Scatter(
            x=days, y=[r.sent for r in ordered], name="Sent", mode=mode, line={"color": LIGHT}
        ),
        go.Scatter(
            x=days,
            y=[r.delivered for r in ordered],
            name="Delivered",
            mode=mode,
            line={"color": NEUTRAL},
        ),
        go.Scatter(
            x=days, y=[r.opened for r in ordered], name="Opened", mode=mode, line={"color": HUMAN}
        ),
        go.Scatter(
            x=days,
            y=[r.clicked for r in ordered],
            name="Clicked",
            mode=mode,
            line={"color": HUMAN, "dash": "dot"},
        ),
    ]
    if counting is not None and counting.exclude_automated:
        traces += [
            go.Scatter(
                x=days,
                y=[r.opened_privacy_proxy for r in ordered],
                name="Opened: privacy proxy only (not counted)",
                mode=mode,
                line={"color": PRIVACY_PROXY, "dash": "dash"},
            ),
            go.Scatter(
                x=days,
                y=[r.opened_automated for r in ordered],
                name="Opened: automated only (not counted)",
                mode=mode,
                line={"color": AUTOMATED, "dash": "dash"},
            ),
        ]
    return _figure(
        traces,
        _layout("Messages by day queued", hovermode="x unified", xaxis=_day_axis(days)),
    )


def activity(events: Sequence[tuple[dt.date, str, str, int]]) -> dict[str, Any] | None:
    """Opens and clicks by the day they happened, human and automated side by side."""
    # plotly is heavy to import; only the report pages draw charts
    import plotly.graph_objects as go

    if not events:
        return None
    series: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    days = sorted({day.isoformat() for day, _, _, _ in events})
    for day, kind, label, count in events:
        series[(kind, label)][day.isoformat()] = count
    colors = {
        "human": HUMAN,
        "unknown": UNKNOWN,
        "privacy_proxy": PRIVACY_PROXY,
        "automated": AUTOMATED,
    }
    traces = []
    for kind in ("open", "click"):
        for label in ("human", "unknown", "privacy_proxy", "automated"):
            values = series.get((kind, label))
            if not values:
                continue
            traces.append(
                go.Bar(
                    x=days,
                    y=[values.get(day, 0) for day in days],
                    name=f"{kind.capitalize()}s: {label.replace('_', ' ')}",
                    marker={
                        "color": colors[label],
                        "pattern": {"shape": "/" if kind == "click" else ""},
                    },
                    offsetgroup=kind,
                    width=0.4 * DAY_MS,  # on a date axis a bar is as wide as this (ms)
                )
            )
    return _figure(
        traces,
        _layout("Opens and clicks by day they happened", barmode="stack", xaxis=_day_axis(days)),
    )


def split_bars(rows: Sequence[Row], *, split_label: str, limit: int = 15) -> dict[str, Any] | None:
    """Human, privacy-proxy and automated unique opens and clicks for the top values of
    the split (side by side whatever the switch says)."""
    # plotly is heavy to import; only the report pages draw charts
    import plotly.graph_objects as go

    shown = [row for row in rows if row.messages][:limit]
    if not shown:
        return None
    labels = [row.label if len(row.label) <= 40 else row.label[:39] + "…" for row in shown]
    traces = [
        go.Bar(
            x=labels,
            y=[r.opened_human for r in shown],
            name="Opened: human",
            marker={"color": HUMAN},
        ),
        go.Bar(
            x=labels,
            y=[r.opened_privacy_proxy for r in shown],
            name="Opened: privacy proxy only",
            marker={"color": PRIVACY_PROXY},
        ),
        go.Bar(
            x=labels,
            y=[r.opened_automated for r in shown],
            name="Opened: automated only",
            marker={"color": AUTOMATED},
        ),
        go.Bar(
            x=labels,
            y=[r.clicked_human for r in shown],
            name="Clicked: human",
            marker={"color": HUMAN, "pattern": {"shape": "/"}},
        ),
        go.Bar(
            x=labels,
            y=[r.clicked_automated for r in shown],
            name="Clicked: automated only",
            marker={"color": AUTOMATED, "pattern": {"shape": "/"}},
        ),
    ]
    return _figure(
        traces, _layout(f"Human and automated engagement by {split_label.lower()}", barmode="group")
    )
