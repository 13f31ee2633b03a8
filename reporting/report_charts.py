"""The charts of the report page for one set of filters (a selector: reads only).

The page, the per-chart downloads and the scheduled report mails all build their charts
here, so a chart's table view, its CSV/XLSX file and the figure always show the same
numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

from luxmail import org
from reporting import charts, reports


def funnel_is_human_only(counting: reports.Counting) -> bool:
    """The funnel counts people only unless the view asked for every event
    (``?events=all``): the organization's default does not widen it."""
    return counting.exclude_automated or not counting.overridden


def report_charts(
    *,
    filters: reports.Filters,
    counting: reports.Counting,
    split_rows: Sequence[reports.Row],
    split_label: str,
) -> list[charts.Chart]:
    """Every chart of the report page, in page order; charts without data are left out."""
    zone = org.time_zone()
    days = reports.split(filters=filters, by="day", counting=counting, sort="label")
    total = reports.totals(filters=filters, counting=counting)
    built = [
        charts.funnel_chart(total, human_only=funnel_is_human_only(counting)),
        charts.timeseries_chart(days, counting=counting, time_zone=zone),
        charts.opened_by_label_chart(days, time_zone=zone),
        charts.activity_chart(reports.activity(filters=filters), time_zone=zone),
        charts.multiples_chart(split_rows, split_label=split_label),
    ]
    return [chart for chart in built if chart is not None]


CHART_NAMES = ("funnel", "timeseries", "opened-by-label", "activity", "split")
