"""Scheduled reports: staff choose a report (split, human only or all events), a
frequency, a format (PDF or XLSX) and recipients; Celery beat runs
:func:`report_schedules_send_due`, which mails each due report as an attachment.

No PHI anywhere: reports are counts and rates; the mail body names the schedule, the
period and a link, nothing about a person. Recipients are re-checked at every send
(they must still be active staff allowed to view reports).
"""

from __future__ import annotations

import datetime as dt
import smtplib
import zoneinfo
from collections.abc import Iterable
from typing import Any

from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone

from luxmail import audit, conf, org
from luxmail.actors import Actor, user_of
from reporting import charts, reports, schedule_documents, selectors
from reporting.models import ReportSchedule

SEND_HOUR = 6  # local time: the report for a finished period arrives before the day starts
RETRY_AFTER = dt.timedelta(minutes=30)
CONTENT_TYPES = {
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class ReportScheduleError(ValueError):
    """A schedule that cannot be saved; the message is for the user."""


def _zone() -> dt.tzinfo:
    return zoneinfo.ZoneInfo(org.time_zone())


def next_run(frequency: str, *, after: dt.datetime) -> dt.datetime:
    """The first send time after ``after``: 06:00 local the next day, next Monday or the
    1st of next month."""
    local = after.astimezone(_zone())
    day = local.date()
    if frequency == ReportSchedule.Frequency.DAILY:
        due = day + dt.timedelta(days=1)
    elif frequency == ReportSchedule.Frequency.WEEKLY:
        due = day + dt.timedelta(days=7 - day.weekday())
    else:
        due = (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    return dt.datetime.combine(due, dt.time(SEND_HOUR), tzinfo=_zone())


def period(frequency: str, *, at: dt.datetime) -> tuple[dt.date, dt.date]:
    """The finished period a report sent at ``at`` covers (both days included)."""
    today = at.astimezone(_zone()).date()
    if frequency == ReportSchedule.Frequency.DAILY:
        return today - dt.timedelta(days=1), today - dt.timedelta(days=1)
    if frequency == ReportSchedule.Frequency.WEEKLY:
        monday = today - dt.timedelta(days=today.weekday())
        return monday - dt.timedelta(days=7), monday - dt.timedelta(days=1)
    first = today.replace(day=1)
    last = first - dt.timedelta(days=1)
    return last.replace(day=1), last


def report_schedule_create(
    *,
    name: str,
    frequency: str,
    fmt: str,
    split: str,
    events: str,
    recipients: Iterable[Any],
    actor: Actor,
    request: Any = None,
) -> ReportSchedule:
    """Save a schedule (first send: the next boundary of its frequency) and audit it.

    Raises :class:`ReportScheduleError` for an unknown split, switch position, frequency
    or format, no recipients, or a recipient who may not view reports."""
    name = name.strip()
    if not name:
        raise ReportScheduleError("Give the schedule a name.")
    if split not in reports.SPLITS:
        raise ReportScheduleError("Choose one of the report's splits.")
    if events not in reports.EVENT_SCOPES:
        raise ReportScheduleError("Choose human only or include automated.")
    if frequency not in ReportSchedule.Frequency.values:
        raise ReportScheduleError("Choose daily, weekly or monthly.")
    if fmt not in ReportSchedule.Format.values:
        raise ReportScheduleError("Choose PDF or XLSX.")
    chosen = list(recipients)
    allowed = set(selectors.report_staff().values_list("pk", flat=True))
    if not chosen:
        raise ReportScheduleError("Choose at least one recipient.")
    if any(user.pk not in allowed for user in chosen):
        raise ReportScheduleError("Every recipient must be active staff allowed to view reports.")
    with transaction.atomic():
        schedule = ReportSchedule.objects.create(
            name=name,
            frequency=frequency,
            format=fmt,
            split=split,
            events=events,
            created_by=user_of(actor),
            next_run_at=next_run(frequency, after=timezone.now()),
        )
        schedule.recipients.set(chosen)
        audit.record(
            "reports.schedule_create",
            actor=actor,
            request=request,
            target=schedule,
            details={
                "frequency": frequency,
                "format": fmt,
                "split": split,
                "events": events,
                "recipients": sorted(user.pk for user in chosen),
            },
        )
    return schedule


def report_schedule_delete(*, schedule: ReportSchedule, actor: Actor, request: Any = None) -> None:
    """Delete a schedule (no more mails) and audit it."""
    with transaction.atomic():
        audit.record(
            "reports.schedule_delete",
            actor=actor,
            request=request,
            target=schedule,
            details={"name": schedule.name},
        )
        schedule.delete()


def report_attachment(schedule: ReportSchedule, *, at: dt.datetime) -> tuple[str, bytes]:
    """(file name, bytes) of the schedule's report for the period finished at ``at``."""
    start, end = period(schedule.frequency, at=at)
    filters = reports.Filters(start=start, end=end)
    counting = reports.Counting.from_settings(schedule.events)
    split = reports.SPLITS[schedule.split]
    rows = reports.split(filters=filters, by=split.name, counting=counting)
    total = reports.totals(filters=filters, counting=counting)
    stamp = f"{start.isoformat()}_{end.isoformat()}"
    if schedule.format == ReportSchedule.Format.XLSX:
        body = schedule_documents.report_xlsx(
            title=f"By {split.label}",
            counting=counting,
            total=total,
            split_label=split.label,
            rows=rows,
        )
    else:
        body = schedule_documents.report_pdf(
            title=f"LuxMail report: {schedule.name}",
            period=(start, end),
            counting=counting,
            total=total,
            funnel=charts.funnel_chart(total, human_only=counting.exclude_automated),
            split_label=split.label,
            rows=rows,
            time_zone=org.time_zone(),
        )
    return f"luxmail-report-{split.name}-{counting.events}-{stamp}.{schedule.format}", body


def _send(schedule: ReportSchedule, *, at: dt.datetime) -> int:
    allowed = selectors.report_staff().filter(pk__in=schedule.recipients.values("pk"))
    addresses = sorted(set(allowed.values_list("email", flat=True)))
    if not addresses:
        return 0
    filename, body = report_attachment(schedule, at=at)
    start, end = period(schedule.frequency, at=at)
    span = start.isoformat() if start == end else f"{start.isoformat()} to {end.isoformat()}"
    mail = EmailMessage(
        subject=f"[LuxMail] Scheduled report: {schedule.name} ({span})",
        body=(
            f"The scheduled report '{schedule.name}' for {span} is attached "
            f"({schedule.get_format_display()}). It holds counts and rates only.\n\n"
            f"See it with other filters: {conf.base_url()}/reports/\n"
            f"Change or stop this schedule: {conf.base_url()}/reports/schedules/\n"
        ),
        to=addresses,
    )
    mail.attach(filename, body, CONTENT_TYPES[schedule.format])
    mail.send()
    return len(addresses)


def report_schedules_send_due(*, now: dt.datetime | None = None, limit: int = 20) -> int:
    """Mail every due scheduled report (at most ``limit`` per run; beat calls it often)
    and move each to its next run. Returns how many were sent.

    Each schedule is locked (``SKIP LOCKED``) while it is sent, so two beats never send
    it twice; a relay error keeps it due and retries after :data:`RETRY_AFTER`, with
    the error's type on the schedule page. Every send is audited (recipients' ids)."""
    now = now or timezone.now()
    sent = 0
    for schedule_id in ReportSchedule.objects.filter(next_run_at__lte=now).values_list(
        "pk", flat=True
    )[:limit]:
        with transaction.atomic():
            schedule = (
                ReportSchedule.objects.select_for_update(skip_locked=True)
                .filter(pk=schedule_id, next_run_at__lte=now)
                .first()
            )
            if schedule is None:
                continue
            try:
                count = _send(schedule, at=now)
            except (OSError, smtplib.SMTPException) as error:
                schedule.last_error = f"Mail relay error: {type(error).__name__}"[:200]
                schedule.next_run_at = now + RETRY_AFTER
                schedule.save(update_fields=["last_error", "next_run_at"])
                continue
            schedule.last_error = "" if count else "No recipient may receive reports any more."
            schedule.last_sent_at = now if count else schedule.last_sent_at
            schedule.next_run_at = next_run(schedule.frequency, after=now)
            schedule.save(update_fields=["last_error", "last_sent_at", "next_run_at"])
            audit.record(
                "reports.schedule_send",
                target=schedule,
                details={"recipients": count, "format": schedule.format},
            )
            sent += 1 if count else 0
    return sent
