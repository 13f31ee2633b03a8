"""Template helpers of the report pages, and ``{% report_summary %}`` for the dashboard."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import template
from django.utils import timezone

from luxmail import org
from reporting import charts, reports

register = template.Library()


@register.filter
def cell(row: reports.Row, column: str) -> Any:
    """``row|cell:"opened"`` — a metric or derived value of a report row."""
    return row.value(column)


@register.filter
def percent(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value * 100:.1f} %"


@register.filter
def number(value: int | None) -> str:
    return "—" if value is None else f"{int(value):,}"


@register.inclusion_tag("reporting/_summary.html", takes_context=True)
def report_summary(context: dict[str, Any], days: int = 30) -> dict[str, Any]:
    """The last ``days`` days at a glance (dashboard widget); empty for users without
    the report permission."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.has_perm("reporting.view_report"):
        return {"allowed": False}
    today = timezone.localdate()
    filters = reports.Filters(start=today - dt.timedelta(days=days - 1), end=today)
    counting = reports.Counting.from_settings()
    total = reports.totals(filters=filters, counting=counting)
    per_day = reports.split(filters=filters, by="day", counting=counting, sort="label")
    by_channel = reports.secured_by_channel(filters=filters, counting=counting)
    return {
        "allowed": True,
        "days": days,
        "total": total,
        "secured": reports.secured_count(by_channel),
        "counting": counting,
        "chart": charts.timeseries(per_day, counting=counting, time_zone=org.time_zone()),
        "start": filters.start,
        "end": filters.end,
    }


@register.filter
def is_number(value: Any) -> bool:
    """Counts in a chart's table view are formatted with thousands separators."""
    return isinstance(value, int) and not isinstance(value, bool)
