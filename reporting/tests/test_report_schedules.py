"""Scheduled reports (issue #20): a schedule e-mails the report as PDF or XLSX to chosen
staff once its period ends, no PHI in the mail, never twice, recipients re-checked."""

from __future__ import annotations

import datetime as dt
import io
import zoneinfo

import openpyxl
import pytest
from django.utils import timezone

from campaigns.models import Campaign
from luxmail.models import AuditEvent
from reporting import schedule_documents, services
from reporting.models import ReportSchedule
from reporting.services import report_schedules
from reporting.tests.test_reports import scenario  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db

NEW_YORK = zoneinfo.ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("frequency", "expected_next", "expected_period"),
    [
        ("daily", dt.datetime(2026, 3, 5, 6), (dt.date(2026, 3, 3), dt.date(2026, 3, 3))),
        ("weekly", dt.datetime(2026, 3, 9, 6), (dt.date(2026, 2, 23), dt.date(2026, 3, 1))),
        ("monthly", dt.datetime(2026, 4, 1, 6), (dt.date(2026, 2, 1), dt.date(2026, 2, 28))),
    ],
)
def test_periods_and_send_times_follow_the_org_time_zone(
    settings, frequency, expected_next, expected_period
):
    settings.TIME_ZONE = "America/New_York"
    timezone.activate(NEW_YORK)
    try:
        # 02:30 UTC on Mar 5 is still Mar 4 in New York.
        at = dt.datetime(2026, 3, 5, 2, 30, tzinfo=dt.UTC)
        assert report_schedules.next_run(frequency, after=at) == expected_next.replace(
            tzinfo=NEW_YORK
        )
        assert report_schedules.period(frequency, at=at) == expected_period
    finally:
        timezone.deactivate()


def _schedule(recipients, *, fmt="pdf", frequency="daily", split="domain", actor=None):
    return services.report_schedule_create(
        name="Daily numbers",
        frequency=frequency,
        fmt=fmt,
        split=split,
        events="human",
        recipients=recipients,
        actor=actor,
    )


def test_a_due_pdf_report_is_mailed_once_without_phi(scenario, make_user, mailoutbox):  # noqa: F811
    viewer, marketer = make_user("Viewer"), make_user("Marketer")
    schedule = _schedule([viewer, marketer], actor=scenario["admin"])
    assert schedule.next_run_at > timezone.now()
    assert services.report_schedules_send_due() == 0  # not due yet
    # Just after its first run (06:00 org time after today's period, which holds the
    # scenario): "now + 1 day" would not reach it when the test runs before 06:00.
    tomorrow = schedule.next_run_at + dt.timedelta(minutes=1)
    assert services.report_schedules_send_due(now=tomorrow) == 1
    assert services.report_schedules_send_due(now=tomorrow) == 0  # moved to its next run
    [mail] = mailoutbox
    assert sorted(mail.to) == sorted([viewer.email, marketer.email])
    assert mail.subject.startswith("[LuxMail] Scheduled report: Daily numbers (")
    [(filename, body, content_type)] = mail.attachments
    assert filename.endswith(".pdf") and "-domain-human-" in filename
    assert content_type == "application/pdf" and body[:5] == b"%PDF-"
    text = mail.subject + mail.body
    assert "@" not in text.replace(viewer.email, "").replace(marketer.email, "")
    assert "alpha.example" not in text  # the numbers are in the attachment only
    schedule.refresh_from_db()
    assert schedule.last_sent_at == tomorrow and schedule.next_run_at > tomorrow
    sent = AuditEvent.objects.filter(action="reports.schedule_send").get()
    assert sent.details == {"recipients": 2, "format": "pdf"}


def test_xlsx_report_has_every_row_and_recipients_are_rechecked(
    scenario,  # noqa: F811
    make_user,
    mailoutbox,
):
    viewer, leaver = make_user("Viewer"), make_user("Viewer")
    schedule = _schedule([viewer, leaver], fmt="xlsx")
    leaver.is_active = False
    leaver.save()
    assert (
        services.report_schedules_send_due(now=schedule.next_run_at + dt.timedelta(minutes=1)) == 1
    )
    [mail] = mailoutbox
    assert mail.to == [viewer.email]
    book = openpyxl.load_workbook(io.BytesIO(mail.attachments[0][1]))
    labels = [row[0].value for row in book.worksheets[0].iter_rows(min_row=2)]
    assert labels == ["alpha.example", "beta.example", "Total"]


def test_relay_failure_keeps_the_report_due(scenario, make_user, monkeypatch, mailoutbox):  # noqa: F811
    schedule = _schedule([make_user("Viewer")])

    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("relay down")

    monkeypatch.setattr("django.core.mail.EmailMessage.send", refuse)
    later = schedule.next_run_at + dt.timedelta(minutes=1)
    assert services.report_schedules_send_due(now=later) == 0
    schedule.refresh_from_db()
    assert schedule.last_error == "Mail relay error: ConnectionRefusedError"
    assert schedule.next_run_at == later + report_schedules.RETRY_AFTER
    assert schedule.last_sent_at is None


def test_only_report_staff_can_be_recipients(make_user):
    outsider = make_user(None)
    with pytest.raises(services.ReportScheduleError, match="allowed to view reports"):
        _schedule([make_user("Viewer"), outsider])
    with pytest.raises(services.ReportScheduleError, match="splits"):
        _schedule([make_user("Viewer")], split="contact_email")
    with pytest.raises(services.ReportScheduleError, match="at least one"):
        _schedule([])
    assert not ReportSchedule.objects.exists()


def test_pdf_survives_hostile_labels(scenario):  # noqa: F811
    Campaign.objects.filter(pk=scenario["first"].pk).update(
        name='=HYPERLINK("x") 糖尿病 🩺 ' + "long" * 40
    )
    schedule = ReportSchedule(
        name="Hostile ✓ → …", frequency="daily", format="pdf", split="campaign", events="all"
    )
    filename, body = report_schedules.report_attachment(
        schedule, at=timezone.now() + dt.timedelta(days=1)
    )
    assert filename.endswith(".pdf") and body[:5] == b"%PDF-"
    assert schedule_documents._latin1("糖尿病 → …") == "??? -> ..."


def test_schedule_pages(scenario, staff_client, make_user):  # noqa: F811
    client = staff_client("Viewer")
    viewer = make_user("Viewer")
    page = client.get("/reports/schedules/", {"split": "domain", "events": "all"})
    assert page.status_code == 200
    body = page.content.decode()
    assert viewer.username in body and 'value="domain" selected' in body
    response = client.post(
        "/reports/schedules/",
        {
            "name": "Weekly by domain",
            "frequency": "weekly",
            "format": "xlsx",
            "split": "domain",
            "events": "human",
            "recipients": [viewer.pk],
        },
    )
    assert response.status_code == 302
    schedule = ReportSchedule.objects.get()
    assert list(schedule.recipients.all()) == [viewer]
    assert "Weekly by domain" in client.get("/reports/schedules/").content.decode()
    invalid = client.post("/reports/schedules/", {"name": "x", "frequency": "hourly"})
    assert invalid.status_code == 200 and not invalid.context["form"].is_valid()
    assert client.get(f"/reports/schedules/{schedule.pk}/delete/").status_code == 405
    assert client.post(f"/reports/schedules/{schedule.pk}/delete/").status_code == 302
    assert not ReportSchedule.objects.exists()
    assert AuditEvent.objects.filter(action="reports.schedule_delete").exists()


def test_schedule_admin_lists_and_shows_but_never_edits(staff_client, make_user):
    client = staff_client("Admin")
    viewer = make_user("Viewer")
    schedule = _schedule([viewer], frequency="weekly", actor=client.user)
    base = "/admin/reporting/reportschedule/"
    listing = client.get(base)
    assert listing.status_code == 200
    body = listing.content.decode()
    assert "Daily numbers" in body and client.user.username in body
    assert 'class="field-recipient_count">1<' in body
    assert "Daily numbers" in client.get(base, {"frequency__exact": "weekly"}).content.decode()
    assert "Daily numbers" not in client.get(base, {"frequency__exact": "daily"}).content.decode()
    page = client.get(f"{base}{schedule.pk}/change/")
    assert page.status_code == 200 and viewer.username in page.content.decode()
    assert 'name="name"' not in page.content.decode()  # read-only: no form inputs
    assert client.get(f"{base}add/").status_code == 403
    assert client.post(f"{base}{schedule.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.post(f"{base}{schedule.pk}/change/", {"name": "Renamed"}).status_code == 403
    assert ReportSchedule.objects.get().name == "Daily numbers"
    # Not admin staff (a Viewer): sent to sign in, like every admin page.
    assert staff_client("Viewer").get(base).status_code == 302
