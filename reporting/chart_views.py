"""Per-chart downloads of the report page: a chart's table as CSV, or every chart's table
as one XLSX workbook (a sheet per chart). The PNG is drawn in the browser by plotly
(``static/js/reports.js``), from the figure on the page."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from luxmail import audit
from reporting import exports, report_charts
from reporting.views import VIEW_REPORT, report_for


@login_required
@permission_required(VIEW_REPORT, raise_exception=True)
def chart_export(request: HttpRequest, name: str, fmt: str) -> HttpResponse:
    """``name`` is one chart (CSV or XLSX) or ``all`` (XLSX: one sheet per chart)."""
    if fmt not in ("csv", "xlsx") or (name not in report_charts.CHART_NAMES and name != "all"):
        return HttpResponse("Unknown chart or format.", status=404)
    if name == "all" and fmt == "csv":
        return HttpResponse("Download every chart as XLSX, or one chart as CSV.", status=404)
    report = report_for(request)
    if report["form"].errors:
        return HttpResponse("Fix the report filters first.", status=400)
    built = report_charts.report_charts(
        filters=report["filters"],
        counting=report["counting"],
        split_rows=report["rows"],
        split_label=report["split"].label,
    )
    chosen = [chart for chart in built if name in ("all", chart.name)]
    if not chosen:
        return HttpResponse("This chart has no data for these filters.", status=404)
    if fmt == "csv":
        body = exports.chart_to_csv(chosen[0])
        content_type = "text/csv; charset=utf-8"
    else:
        body = exports.chart_to_xlsx(chosen)
        content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    audit.record(
        "reports.export",
        actor=request.user,
        request=request,
        details={"format": fmt, "chart": name, "events": report["counting"].events},
    )
    stamp = timezone.localdate().isoformat()
    filename = f"luxmail-chart-{name}-{report['counting'].events}-{stamp}.{fmt}"
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response
