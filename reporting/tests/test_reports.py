"""Report numbers equal counts computed directly from raw events and messages, with the
"exclude automated" setting on and off; splits, sorting, exports, pages and the API."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict

import pytest
from django.test import Client
from django.utils import timezone

from campaigns.models import Message
from luxmail import org
from luxmail.api import services as api_services
from reporting import buffer, exports, reports
from reporting.models import Event, MessageStat
from reporting.tests.helpers import APPLE_MPP, BROWSER, built_html, drain, started_campaign

pytestmark = pytest.mark.django_db

SETTINGS = [
    pytest.param(True, False, id="human-only"),
    pytest.param(True, True, id="human-and-unknown"),
    pytest.param(False, True, id="everything"),
]


# No library or rule knows it, and it names a platform (a bare product token would be
# automated: "no_platform_agent", docs/tracking.md).
UNKNOWN_AGENT = "CustomMailer/2.3 (KolibriOS; en)"


def _entry(kind, message_id, campaign_id, when, *, link=None, ua=BROWSER, ip="198.51.100.7"):
    entry = {
        "k": kind,
        "m": message_id,
        "c": campaign_id,
        "t": when.timestamp(),
        "ip": ip,
        "ua": ua,
    }
    if link is not None:
        entry["l"] = link
    buffer.append(entry)


@pytest.fixture
def scenario(tracking_buffer, make_user):
    """Two campaigns, two domains, three channels, every kind of label."""
    admin = make_user("Admin")
    first, a = started_campaign(6, actor=admin, domain="alpha.example", marketing_id="FLU-26")
    second, b = started_campaign(4, actor=admin, domain="beta.example", report_field="north")
    built_html(first, a[0])
    built_html(second, b[0])
    sent = timezone.now() - dt.timedelta(hours=3)
    Message.objects.filter(id__in=a[:5] + b).update(
        state="sent", channel="tls", sending_at=sent, finished_at=sent
    )
    Message.objects.filter(id=a[4]).update(channel="smime")
    Message.objects.filter(id=b[3]).update(channel="portal")
    Message.objects.filter(id=a[5]).update(state="bounced", channel="tls", finished_at=sent)
    later = sent + dt.timedelta(minutes=40)
    _entry("o", a[0], first.pk, later)  # human open
    _entry("o", a[0], first.pk, later + dt.timedelta(minutes=3))  # and again
    _entry("o", a[1], first.pk, later, ua=APPLE_MPP)  # Apple MPP: automated
    _entry("c", a[1], first.pk, later + dt.timedelta(hours=1), link=2)  # then a person clicks
    _entry("o", a[2], first.pk, later, ua=UNKNOWN_AGENT)  # unknown
    _entry("c", a[3], first.pk, sent + dt.timedelta(seconds=3), link=1)  # scanner: too soon
    _entry("o", b[0], second.pk, later, ua="curl/8.0")  # automated
    _entry("c", b[1], second.pk, later, link=1, ua=UNKNOWN_AGENT)  # unknown click
    _entry("o", b[3], second.pk, later)  # portal message, human
    assert drain().stored == 9
    return {"first": first, "second": second, "a": a, "b": b, "admin": admin}


def _set(exclude: bool, unknown: bool) -> reports.Counting:
    org.org_settings_update(
        actor=None, exclude_automated_events=exclude, count_unknown_events=unknown
    )
    return reports.Counting.from_settings()


def _direct(message_ids, counting):
    """The numbers, computed from Event and Message rows without any rollup."""
    events = list(
        Event.objects.filter(message_id__in=message_ids).values("message_id", "kind", "label")
    )
    counted = [e for e in events if counting.counts(e["label"])]
    states = list(Message.objects.filter(id__in=message_ids).values_list("state", flat=True))
    return {
        "messages": len(states),
        "sent": sum(s in ("sent", "bounced") for s in states),
        "delivered": states.count("sent"),
        "bounced": states.count("bounced"),
        "opened": len({e["message_id"] for e in counted}),  # a click is an open too
        "clicked": len({e["message_id"] for e in counted if e["kind"] == "click"}),
        # Open events, plus the open a click implies where no open event carries the
        # message's best label (so unique opened never exceeds total opens).
        "opens": sum(e["kind"] == "open" for e in counted) + _implied_opens(events, counting),
        "clicks": sum(e["kind"] == "click" for e in counted),
        "opened_automated": len(
            {e["message_id"] for e in events}
            - {e["message_id"] for e in events if e["label"] != "automated"}
        ),
    }


def _implied_opens(events, counting):
    rank = {"automated": 1, "unknown": 2, "human": 3}
    per_message = defaultdict(list)
    for e in events:
        per_message[e["message_id"]].append(e)
    implied = 0
    for rows in per_message.values():
        best = max((e["label"] for e in rows), key=rank.__getitem__)
        has_open = any(e["kind"] == "open" and e["label"] == best for e in rows)
        implied += not has_open and counting.counts(best)
    return implied


def _row_numbers(row):
    return {
        name: row.value(name)
        for name in (
            "messages",
            "sent",
            "delivered",
            "bounced",
            "opened",
            "clicked",
            "opens",
            "clicks",
            "opened_automated",
        )
    }


@pytest.mark.parametrize(("exclude", "unknown"), SETTINGS)
def test_report_numbers_equal_direct_counts(scenario, exclude, unknown):
    counting = _set(exclude, unknown)
    every = scenario["a"] + scenario["b"]
    total = reports.totals(filters=reports.Filters(), counting=counting)
    assert _row_numbers(total) == _direct(every, counting)
    assert total.open_rate == pytest.approx(total.opened / total.delivered)
    assert total.click_rate == pytest.approx(total.clicked / total.delivered)

    by_campaign = {
        r.campaign_id: r
        for r in reports.split(filters=reports.Filters(), by="campaign", counting=counting)
    }
    assert _row_numbers(by_campaign[scenario["first"].pk]) == _direct(scenario["a"], counting)
    assert _row_numbers(by_campaign[scenario["second"].pk]) == _direct(scenario["b"], counting)

    by_domain = {
        r.key: r for r in reports.split(filters=reports.Filters(), by="domain", counting=counting)
    }
    assert _row_numbers(by_domain["alpha.example"]) == _direct(scenario["a"], counting)

    per_channel = defaultdict(list)
    for message_id, channel in Message.objects.filter(id__in=every).values_list("id", "channel"):
        per_channel[channel].append(message_id)
    by_channel = {
        r.key: r for r in reports.split(filters=reports.Filters(), by="channel", counting=counting)
    }
    assert set(by_channel) == set(per_channel)
    for channel, ids in per_channel.items():
        assert _row_numbers(by_channel[channel]) == _direct(ids, counting)


def test_the_setting_changes_what_counts(scenario):
    human = reports.totals(filters=reports.Filters(), counting=_set(True, False))
    everything = reports.totals(filters=reports.Filters(), counting=_set(False, True))
    # a[0] human open (twice), a[1] human click (upgrades Apple's open, and implies one
    # human open in the totals), b[3] human open
    assert (human.opened, human.clicked, human.opens) == (3, 1, 4)
    # + a[2] unknown, a[3] scanner, b[0] curl, b[1] unknown click; Apple's fetch; the
    # clicks of a[3] and b[1] each imply an open (this used to read 7 opened, 6 opens)
    assert (everything.opened, everything.clicked, everything.opens) == (7, 3, 9)
    assert everything.opened <= everything.opens and human.opened <= human.opens
    # the message's event log keeps all of them whatever the setting
    assert Event.objects.filter(message_id=scenario["a"][1]).count() == 2


def test_splits_filters_and_sorting(scenario):
    counting = _set(True, True)
    first, second = scenario["first"], scenario["second"]
    rows = reports.split(filters=reports.Filters(), by="marketing_id", counting=counting)
    assert {r.label for r in rows} == {"FLU-26", "(none)"}
    rows = reports.split(filters=reports.Filters(), by="report_field", counting=counting)
    assert {r.key: r.messages for r in rows} == {"": 6, "north": 4}
    rows = reports.split(filters=reports.Filters(), by="from_address", counting=counting)
    assert [(r.key, r.messages) for r in rows] == [("news@clinic.example", 10)]
    rows = reports.split(filters=reports.Filters(), by="subject", counting=counting)
    assert sum(r.messages for r in rows) == 10
    rows = reports.split(filters=reports.Filters(), by="day", counting=counting)
    queued_day = timezone.localtime(MessageStat.objects.earliest("hour").hour).date()
    assert sum(r.messages for r in rows) == 10 and rows[0].key == queued_day.isoformat()

    only_second = reports.Filters(campaign_ids=(second.pk,))
    assert reports.totals(filters=only_second, counting=counting).messages == 4
    assert (
        reports.totals(filters=reports.Filters(domain="alpha.example"), counting=counting).messages
        == 6
    )
    assert (
        reports.totals(filters=reports.Filters(channels=("smime",)), counting=counting).messages
        == 1
    )
    assert (
        reports.totals(filters=reports.Filters(marketing_id="FLU-26"), counting=counting).messages
        == 6
    )
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    assert reports.totals(filters=reports.Filters(start=tomorrow), counting=counting).messages == 0

    ascending = reports.split(
        filters=reports.Filters(),
        by="campaign",
        counting=counting,
        sort="messages",
        descending=False,
    )
    assert [r.campaign_id for r in ascending] == [second.pk, first.pk]
    by_rate = reports.split(
        filters=reports.Filters(), by="campaign", counting=counting, sort="open_rate"
    )
    assert by_rate[0].open_rate >= by_rate[1].open_rate
    with pytest.raises(reports.ReportFilterError):
        reports.split(filters=reports.Filters(), by="campaign", counting=counting, sort="nope")

    secured = reports.secured_by_channel(filters=reports.Filters(), counting=counting)
    assert [r.key for r in secured][:3] == ["smime", "tls", "portal"]
    assert reports.secured_count(secured) == 10  # every sent one (a bounce was sent too)


def test_activity_counts_events_by_the_day_they_happened(scenario):
    series = reports.activity(filters=reports.Filters())
    assert sum(count for _, _, _, count in series) == 9
    labels = {(kind, label) for _, kind, label, _ in series}
    assert ("click", "human") in labels and ("open", "automated") in labels


def test_csv_and_xlsx_neutralize_formulas_and_hold_no_phi(scenario):
    from openpyxl import load_workbook

    counting = _set(True, True)
    first = scenario["first"]
    first.marketing_id = '=HYPERLINK("https://evil.example","x")'
    first.save(update_fields=["marketing_id"])
    rows = reports.split(filters=reports.Filters(), by="marketing_id", counting=counting)
    total = reports.totals(filters=reports.Filters(), counting=counting)
    text = exports.to_csv(rows, split_label="Marketing id", total=total).decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(text)))
    assert table[0][0] == "Marketing id" and "Open rate" in table[0]
    labels = [line[0] for line in table[1:]]
    assert '\'=HYPERLINK("https://evil.example","x")' in labels and labels[-1] == "Total"
    assert "@" not in text  # no address anywhere

    workbook = load_workbook(
        io.BytesIO(exports.to_xlsx(rows, split_label="Marketing id", total=total))
    )
    sheet = workbook.active
    values = [sheet.cell(row=i, column=1).value for i in range(2, sheet.max_row + 1)]
    assert '\'=HYPERLINK("https://evil.example","x")' in values
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)
    assert exports.neutralize("-2+3") == "'-2+3" and exports.neutralize(-5) == -5


# --- pages --------------------------------------------------------------------------------


def test_report_page_and_downloads(scenario, staff_client):
    viewer = staff_client("Viewer")
    response = viewer.get("/reports/", {"split": "domain"})
    assert response.status_code == 200
    body = response.content.decode()
    assert "alpha.example" in body and "beta.example" in body
    assert 'id="chart-timeseries" type="application/json"' in body
    assert "<style" not in body and "style=" not in body
    response = viewer.get("/reports/export.csv", {"split": "domain"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment;" in response["Content-Disposition"]
    text = response.content.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("Recipient domain,Recipients,")
    response = viewer.get("/reports/export.xlsx", {"split": "campaign"})
    assert response.status_code == 200 and response.content[:2] == b"PK"
    assert viewer.get("/reports/export.pdf").status_code == 404
    assert viewer.get("/reports/", {"start": "2026-02-01", "end": "2026-01-01"}).status_code == 200


def test_reports_need_the_report_permission(scenario, staff_client, make_user):
    from django.contrib.auth.models import Permission

    assert Permission.objects.filter(
        content_type__app_label="reporting", codename="view_report"
    ).exists()
    from luxmail.testing import verify_session

    nobody = make_user(None)
    client = Client()
    verify_session(client, nobody)
    assert client.get("/reports/").status_code == 403
    assert client.get(f"/reports/messages/{scenario['a'][0]}/").status_code == 403
    for role in ("Admin", "Marketer", "Compliance Officer", "Viewer"):
        assert staff_client(role).get("/reports/").status_code == 200


def test_message_event_log_shows_every_event(scenario, staff_client):
    _set(True, False)  # automated events excluded from statistics…
    response = staff_client("Viewer").get(f"/reports/messages/{scenario['a'][1]}/")
    body = response.content.decode()
    assert response.status_code == 200
    assert "apple_mpp" in body or "bare_user_agent" in body  # …but still in the log
    assert "no_automation_signal" in body
    assert "198.51.100.0/24" in body and "198.51.100.7" not in body
    assert staff_client("Viewer").get("/reports/messages/999999999/").status_code == 404


def test_campaign_links_page_and_honeypot_option(
    scenario, staff_client, tracking_buffer, make_user
):
    marketer = staff_client("Marketer")
    first = scenario["first"]
    response = marketer.get(f"/reports/campaigns/{first.pk}/links/")
    assert (
        response.status_code == 200 and "https://clinic.example/hours" in response.content.decode()
    )
    # Started campaigns keep their links: the honeypot option is fixed.
    response = marketer.post(f"/reports/campaigns/{first.pk}/links/", {"honeypot": "on"})
    assert "has started" in response.content.decode()
    from campaigns.tests.factories import make_campaign, make_contacts

    draft = make_campaign(contact_ids=make_contacts(1, prefix="draft"))
    response = marketer.post(f"/reports/campaigns/{draft.pk}/links/", {"honeypot": "on"})
    assert response.status_code == 302
    from reporting.models import TrackingOptions

    assert TrackingOptions.objects.get(campaign=draft).honeypot is True
    viewer = staff_client("Viewer")
    assert viewer.post(f"/reports/campaigns/{draft.pk}/links/", {"honeypot": ""}).status_code == 403


def test_dashboard_widget(scenario, staff_client):
    body = staff_client("Viewer").get("/").content.decode()
    assert "Last 30 days" in body and "chart-summary" in body


# --- API ----------------------------------------------------------------------------------


@pytest.fixture
def reports_api(scenario):
    issued = api_services.api_key_create(
        name="BI", scopes=["reports:read"], actor=scenario["admin"]
    )
    return Client(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")


def test_api_summary_split_and_events(scenario, reports_api):
    _set(True, True)
    summary = reports_api.get("/api/v1/reports/summary/").json()
    assert summary["total"]["metrics"]["messages"] == 10
    assert summary["counting"] == {
        "events": "human",
        "overridden": False,
        "exclude_automated": True,
        "count_unknown": True,
        "labels": ["human", "unknown"],
    }
    assert summary["secured"] == 10
    split = reports_api.get(
        "/api/v1/reports/split/domain/", {"campaign": [scenario["first"].pk], "sort": "opened"}
    ).json()
    assert [row["key"] for row in split["rows"]] == ["alpha.example"]
    assert split["rows"][0]["opened"] == 3  # a[0] human, a[1] human click, a[2] unknown
    assert reports_api.get("/api/v1/reports/split/planet/").status_code == 400
    assert reports_api.get("/api/v1/reports/summary/", {"start": "2026-13-01"}).status_code == 400
    events = reports_api.get(f"/api/v1/messages/{scenario['a'][1]}/events/").json()
    assert [(e["kind"], e["label"]) for e in events["results"]] == [
        ("open", "automated"),
        ("click", "human"),
    ]
    assert "ip_hash" not in events["results"][0]
    assert reports_api.get("/api/v1/messages/999999999/events/").status_code == 404


def test_api_needs_reports_read(scenario):
    issued = api_services.api_key_create(
        name="Other", scopes=["contacts:read"], actor=scenario["admin"]
    )
    other = Client(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    assert other.get("/api/v1/reports/summary/").status_code == 403
    assert other.get(f"/api/v1/messages/{scenario['a'][0]}/events/").status_code == 403


def test_schema_documents_the_report_endpoints(staff_client):
    schema = (
        staff_client("Admin").get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    )
    for path in (
        "/api/v1/reports/summary/",
        "/api/v1/reports/split/{by}/",
        "/api/v1/messages/{message_id}/events/",
    ):
        assert path in schema


def test_message_stat_rows_exist_for_the_scenario(scenario):
    assert MessageStat.objects.count() == 10


def test_domain_split_over_months_equals_the_raw_rows(scenario, settings):
    """Whole months come from the month rollup, the edges from the hourly one: the sum
    must equal the message rows for every range (month boundaries in local time)."""
    import zoneinfo

    settings.TIME_ZONE = "America/New_York"
    counting = _set(False, True)
    every = scenario["a"] + scenario["b"]
    now = timezone.now()
    # Spread the messages over four months (the triggers move their counts).
    for offset, message_id in enumerate(every):
        MessageStat.objects.filter(message_id=message_id).update(
            hour=(now - dt.timedelta(days=17 * offset)).replace(minute=0, second=0, microsecond=0)
        )
    zone = zoneinfo.ZoneInfo("America/New_York")
    stats = list(MessageStat.objects.filter(message_id__in=every).values())
    today = timezone.localdate()
    ranges = [
        (None, None),
        (today - dt.timedelta(days=200), today),
        (today - dt.timedelta(days=45), today - dt.timedelta(days=3)),
        (today - dt.timedelta(days=10), today - dt.timedelta(days=2)),
        (today.replace(day=1) - dt.timedelta(days=31), today.replace(day=1) - dt.timedelta(days=1)),
        (None, today - dt.timedelta(days=60)),
        (today - dt.timedelta(days=60), None),
    ]
    for start, end in ranges:
        filters = reports.Filters(start=start, end=end)
        expected = defaultdict(lambda: [0, 0])
        for row in stats:
            day = row["hour"].astimezone(zone).date()
            if (start is None or day >= start) and (end is None or day <= end):
                expected[row["domain"]][0] += 1
                expected[row["domain"]][1] += row["open_label"] > 0
        found = {
            r.key: [r.messages, r.opened]
            for r in reports.split(filters=filters, by="domain", counting=counting)
        }
        assert found == dict(expected), (start, end)
        total = reports.totals(
            filters=reports.Filters(start=start, end=end, domain="alpha.example"), counting=counting
        )
        assert total.messages == expected.get("alpha.example", [0, 0])[0]


@pytest.mark.parametrize("sort", ["sent", "opened", "open_rate", "click_to_open_rate", "label"])
@pytest.mark.parametrize("descending", [True, False])
def test_first_rows_sorted_in_sql_match_the_full_sort(scenario, sort, descending):
    """The page asks for the first N rows sorted in SQL; they are the full list's first N."""
    counting = _set(True, True)
    for by in ("campaign", "domain", "channel", "marketing_id"):
        full = reports.split(
            filters=reports.Filters(), by=by, counting=counting, sort=sort, descending=descending
        )
        page = reports.split_page(
            filters=reports.Filters(),
            by=by,
            counting=counting,
            sort=sort,
            descending=descending,
            limit=2,
        )
        assert page.total_rows == len(full)
        assert [row.value(sort) for row in page.rows] == [row.value(sort) for row in full[:2]]


def test_range_segments_add_up_to_the_range_exactly():
    """Signed month/day/hour pieces: every hour of the range counted once, none outside."""
    utc = dt.UTC
    origin = dt.datetime(2025, 11, 1, tzinfo=utc)
    horizon = [origin + dt.timedelta(hours=h) for h in range(24 * 330)]
    cases = [
        (dt.datetime(2026, 1, 1, tzinfo=utc), dt.datetime(2026, 4, 1, tzinfo=utc)),
        (dt.datetime(2026, 1, 14, 5, tzinfo=utc), dt.datetime(2026, 3, 2, 5, tzinfo=utc)),
        (dt.datetime(2026, 1, 3, 5, tzinfo=utc), dt.datetime(2026, 3, 29, 4, tzinfo=utc)),
        (dt.datetime(2026, 2, 3, 5, tzinfo=utc), dt.datetime(2026, 2, 9, 5, tzinfo=utc)),
        (dt.datetime(2026, 2, 2, 5, tzinfo=utc), dt.datetime(2026, 2, 27, 5, tzinfo=utc)),
        (dt.datetime(2026, 2, 3, 5, tzinfo=utc), dt.datetime(2026, 2, 3, 9, tzinfo=utc)),
        (None, dt.datetime(2026, 2, 3, 5, tzinfo=utc)),
        (dt.datetime(2026, 2, 25, 5, tzinfo=utc), None),
        (dt.datetime(2026, 5, 16, 4, tzinfo=utc), dt.datetime(2026, 7, 16, 4, tzinfo=utc)),
        (dt.datetime(2026, 3, 30, 4, tzinfo=utc), dt.datetime(2026, 4, 2, 4, tzinfo=utc)),
        (None, dt.datetime(2026, 5, 20, 4, tzinfo=utc)),
        (dt.datetime(2026, 5, 13, 4, tzinfo=utc), None),
    ]
    for start, end in cases:
        pieces = reports.range_segments(start, end)
        for hour in horizon:
            inside = (start is None or hour >= start) and (end is None or hour < end)
            weight = sum(
                sign
                for _, low, high, sign in pieces
                if (low is None or hour >= low) and (high is None or hour < high)
            )
            assert weight == int(inside), (start, end, hour)
        for kind, low, high, _ in pieces:
            if kind == "month":
                assert all(b is None or (b.day, b.hour) == (1, 0) for b in (low, high))
            if kind == "day":
                assert low.hour == high.hour == 0
            if kind == "week":
                assert (low.weekday(), low.hour, high.weekday(), high.hour) == (0, 0, 0, 0)
    assert reports.range_segments(None, None) == [("total", None, None, 1)]
