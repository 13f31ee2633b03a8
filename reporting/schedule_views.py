"""Scheduled reports: the list, the form that adds one, and deleting one."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from luxmail import org
from reporting import services
from reporting.models import ReportSchedule
from reporting.schedule_forms import ReportScheduleForm
from reporting.views import VIEW_REPORT


@login_required
@permission_required(VIEW_REPORT, raise_exception=True)
def schedules(request: HttpRequest) -> HttpResponse:
    # The report page's "Schedule this report" link brings its split and switch along.
    initial = {key: request.GET[key] for key in ("split", "events") if request.GET.get(key)}
    form = ReportScheduleForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            schedule = services.report_schedule_create(
                name=data["name"],
                frequency=data["frequency"],
                fmt=data["format"],
                split=data["split"],
                events=data["events"],
                recipients=data["recipients"],
                actor=request.user,
                request=request,
            )
        except services.ReportScheduleError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"“{schedule.name}” is scheduled.")
            return redirect("reporting:schedules")
    return render(
        request,
        "reporting/schedules.html",
        {
            "nav": "reports",
            "form": form,
            "schedules": ReportSchedule.objects.prefetch_related("recipients").order_by("name"),
            "time_zone": org.time_zone(),
        },
    )


@login_required
@permission_required(VIEW_REPORT, raise_exception=True)
@require_POST
def schedule_delete(request: HttpRequest, schedule_id: int) -> HttpResponse:
    schedule = get_object_or_404(ReportSchedule, pk=schedule_id)
    services.report_schedule_delete(schedule=schedule, actor=request.user, request=request)
    messages.success(request, f"“{schedule.name}” will not be sent any more.")
    return redirect("reporting:schedules")
