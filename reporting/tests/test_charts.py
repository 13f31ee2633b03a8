"""The report charts (issue #20): legends outside the plot, days in the organization's
time zone, human vs automated stacked, hover with counts and rates, the funnel (human
only by default), small multiples per split, and every chart's table and downloads."""

from __future__ import annotations

import csv
import datetime as dt
import io

import openpyxl
import pytest

from reporting import charts, report_charts, reports
from reporting.tests.test_reports import scenario  # noqa: F401 - fixture

HUMAN_ONLY = reports.Counting(exclude_automated=True, count_unknown=False)
ALL_EVENTS = reports.Counting(exclude_automated=False, overridden=True)


def _row(key: str, counting: reports.Counting = HUMAN_ONLY, **values: int) -> reports.Row:
    metrics = dict.fromkeys(reports.METRIC_NAMES, 0)
    metrics.update(values)
    return reports.Row(key, key, metrics, counting)


DAYS = [
    _row(
        "2026-03-01",
        messages=10,
        sent=10,
        delivered=8,
        opened_human=4,
        opened_automated=2,
        opened_privacy_proxy=1,
        clicked_human=2,
        clicked_automated=1,
    ),
    _row("2026-03-02", messages=5, sent=5, delivered=5, opened_human=1, opened_unknown=1),
]


def _legend_outside(figure):
    legend = figure["layout"]["legend"]
    assert legend["orientation"] == "h"
    assert legend["y"] >= 1 and legend["yanchor"] == "bottom"  # above the plot area
    assert "title" not in figure["layout"]  # the page's heading names the chart


def test_day_charts_label_days_in_the_org_time_zone_with_legends_above():
    chart = charts.timeseries_chart(DAYS, counting=HUMAN_ONLY, time_zone="America/New_York")
    assert chart is not None
    figure = chart.figure
    _legend_outside(figure)
    axis = figure["layout"]["xaxis"]
    assert axis["hoverformat"] == "%a %b %d, %Y" and "%H" not in axis["tickformat"]
    assert axis["title"]["text"] == "Day queued (America/New_York)"
    opened = next(t for t in figure["data"] if t["name"].startswith("Opened"))
    assert list(opened["x"]) == ["2026-03-01", "2026-03-02"]  # local dates, no times
    assert opened["customdata"][0] == "50.0 % of delivered"  # 4 human of 8 delivered
    assert "%{customdata}" in opened["hovertemplate"]
    assert chart.rows[0] == ["2026-03-01", 10, 8, 4, 2, 0.5, 0.25]


def test_opened_by_label_stacks_human_and_automated():
    chart = charts.opened_by_label_chart(DAYS, time_zone="UTC")
    assert chart is not None
    assert chart.figure["layout"]["barmode"] == "stack"
    names = [trace["name"] for trace in chart.figure["data"]]
    assert names == [
        "Opened: human",
        "Opened: unknown",
        "Opened: privacy proxy only",
        "Opened: automated only",
    ]
    automated = chart.figure["data"][3]
    assert list(automated["y"]) == [2, 0] and automated["customdata"][0] == "25.0 % of delivered"
    _legend_outside(chart.figure)


def test_funnel_counts_people_only_unless_the_view_asks_for_all():
    total = _row(
        "total",
        messages=15,
        sent=15,
        delivered=13,
        opened_human=5,
        opened_automated=2,
        clicked_human=2,
        clicked_automated=1,
    )
    human = charts.funnel_chart(total, human_only=True)
    assert human is not None
    assert [row[:2] for row in human.rows] == [
        ["Queued", 15],
        ["Delivered", 13],
        ["Opened (human)", 5],
        ["Clicked (human)", 2],
    ]
    assert human.rows[3][2] == pytest.approx(2 / 5)  # share of the step before
    assert list(human.figure["data"][0]["x"]) == [15, 13, 5, 2]
    everything = charts.funnel_chart(
        _row(
            "total",
            ALL_EVENTS,
            messages=15,
            delivered=13,
            opened_human=5,
            opened_automated=2,
            clicked_human=2,
            clicked_automated=1,
        ),
        human_only=False,
    )
    assert everything is not None and [row[1] for row in everything.rows] == [15, 13, 7, 3]
    # The organization's default never widens the funnel; only the view's switch does.
    assert report_charts.funnel_is_human_only(reports.Counting(exclude_automated=False))
    assert not report_charts.funnel_is_human_only(ALL_EVENTS)
    assert charts.funnel_chart(_row("total"), human_only=True) is None


def test_small_multiples_draw_one_panel_per_split_value_on_one_scale():
    rows = [_row(f"campaign {n}", messages=3, delivered=3, opened_human=n) for n in range(1, 6)]
    rows.append(_row("nothing sent"))
    chart = charts.multiples_chart(rows, split_label="Campaign")
    assert chart is not None
    titles = [note["text"] for note in chart.figure["layout"]["annotations"]]
    assert titles == [f"campaign {n}" for n in range(1, 6)]
    axes = {trace.get("yaxis", "y") for trace in chart.figure["data"]}
    assert len(axes) == 5
    layout = chart.figure["layout"]
    scales = {
        layout[name].get("matches", name.replace("axis", ""))
        for name in layout
        if name.startswith("yaxis")
    }
    assert len(scales) == 1  # every panel on one scale
    legend_entries = [t for t in chart.figure["data"] if t.get("showlegend") is not False]
    assert len(legend_entries) == 4  # one entry per label, not per panel
    assert [row[0] for row in chart.rows] == [f"campaign {n}" for n in range(1, 6)]


@pytest.mark.django_db
def test_report_page_shows_every_chart_with_table_and_downloads(scenario, staff_client):  # noqa: F811
    viewer = staff_client("Viewer")
    body = viewer.get("/reports/", {"split": "domain"}).content.decode()
    for name in ("funnel", "timeseries", "opened-by-label", "activity", "split"):
        assert f'id="chart-{name}" type="application/json"' in body
        assert f'id="table-{name}"' in body
        assert f"/reports/charts/{name}.csv?split=domain" in body
        assert f'data-chart-png="chart-{name}"' in body
    assert "Opened (human)" in body  # the funnel: people only by default

    response = viewer.get("/reports/charts/split.csv", {"split": "domain"})
    assert response.status_code == 200 and "attachment;" in response["Content-Disposition"]
    table = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert table[0][0] == "Recipient domain"
    assert sorted(row[0] for row in table[1:]) == ["alpha.example", "beta.example"]

    response = viewer.get("/reports/charts/funnel.csv", {"events": "all"})
    funnel = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert funnel[3][0] == "Opened (all events)"

    response = viewer.get("/reports/charts/all.xlsx")
    assert response.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    assert len(book.sheetnames) == 5 and book.worksheets[0]["A2"].value == "Queued"

    assert viewer.get("/reports/charts/all.csv").status_code == 404
    assert viewer.get("/reports/charts/nope.csv").status_code == 404
    assert viewer.get("/reports/charts/funnel.pdf").status_code == 404
    assert viewer.get("/reports/charts/funnel.csv", {"start": "not a day"}).status_code == 400


def test_split_labels_are_text_never_markup_in_the_figure():
    hostile = "<a href='javascript:alert(1)'>x</a><img src=x onerror=alert(1)>"
    chart = charts.multiples_chart(
        [_row(hostile, messages=1, delivered=1, opened_human=1)], split_label="Subject"
    )
    assert chart is not None
    [title] = chart.figure["layout"]["annotations"]
    assert "<" not in title["text"] and title["text"].startswith("&lt;a href=")
    assert chart.rows[0][0] == hostile  # the table view escapes it as Django does


def test_activity_stacks_opens_and_clicks_side_by_side():
    day = dt.date(2026, 3, 1)
    figure = charts.activity(
        [(day, "open", "human", 2), (day, "open", "automated", 2), (day, "click", "human", 1)],
        time_zone="UTC",
    )
    assert figure is not None and figure["layout"]["barmode"] == "stack"
    offsets = {trace["name"]: trace["offset"] for trace in figure["data"]}
    assert offsets["Opens: human"] == offsets["Opens: automated"] < 0 < offsets["Clicks: human"]
    assert figure["data"][0]["customdata"] == ["50.0 % of opens that day"]
