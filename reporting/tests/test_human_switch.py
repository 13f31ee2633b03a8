"""The "human only / include automated" switch (issue #15, reports half): privacy-proxy
opens stored and shown apart, automated events by kind, the per-view override on
reports, downloads and the API, and the human-only helpers (A/B winners, journey
branches, segments)."""

from __future__ import annotations

import csv
import datetime as dt
import io

import openpyxl
import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from campaigns.models import Campaign, Message
from luxmail import org
from luxmail.api import services as api_services
from reporting import buffer, demo, exports, ingest, proxy_ranges, reports, selectors, services
from reporting.classification import Kind, Label, Verdict
from reporting.models import Event, MessageStat
from reporting.segments import counted_ranks
from reporting.tests.helpers import APPLE_MPP, BROWSER, built_html, drain, started_campaign

pytestmark = pytest.mark.django_db

SLACK = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
APPLE_IP = "172.224.226.9"  # Apple MPP egress (seed ranges)


def _entry(
    kind, message_id, campaign_id, when, *, link=None, ua=BROWSER, ip="198.51.100.7", h=None
):
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
    if h:
        entry["h"] = h
    buffer.append(entry)


@pytest.fixture
def engaged(tracking_buffer, make_user, django_capture_on_commit_callbacks):
    """One campaign of 8 delivered messages: a person, an MPP-only open, a person behind
    MPP, a link preview, a crawler, a prefetch, a scanner, and nothing."""
    admin = make_user("Admin")
    with django_capture_on_commit_callbacks(execute=True):  # the index rebuilds on commit
        services.proxy_ranges_replace(
            source="seed", specs=proxy_ranges.read_seed().ranges, actor=admin
        )
        services.proxy_ranges_replace(
            source="apple_egress",
            specs=proxy_ranges.parse_apple_egress(demo.APPLE_EGRESS_SAMPLE).ranges,
            actor=admin,
        )
    campaign, ids = started_campaign(8, actor=admin, domain="north.example", marketing_id="FLU")
    built_html(campaign, ids[0])
    sent = timezone.now() - dt.timedelta(hours=6)
    Message.objects.filter(id__in=ids).update(
        state="sent", channel="tls", sending_at=sent, finished_at=sent
    )
    later = sent + dt.timedelta(minutes=30)
    c = campaign.pk
    _entry("o", ids[0], c, later)  # a person opens
    _entry("c", ids[0], c, later + dt.timedelta(minutes=1), link=1)  # and clicks
    _entry("o", ids[1], c, sent + dt.timedelta(seconds=40), ua=APPLE_MPP, ip=APPLE_IP)
    _entry("o", ids[2], c, sent + dt.timedelta(seconds=40), ua=APPLE_MPP, ip=APPLE_IP)
    _entry("c", ids[2], c, later + dt.timedelta(hours=1), link=2, ip="198.51.100.20")
    _entry("c", ids[3], c, later, link=1, ua=SLACK, ip="3.208.10.20")
    _entry("o", ids[4], c, later, ua=GOOGLEBOT, ip="66.249.66.1")
    _entry("c", ids[5], c, later, link=1, h={"sec_purpose": "prefetch"})
    _entry("c", ids[6], c, sent + dt.timedelta(seconds=2), link=1)  # too soon: a scanner
    assert drain().stored == 9
    yield {"campaign": campaign, "ids": ids, "admin": admin}
    forget_ranges()


def forget_ranges():
    """The ranges roll back with the test; make every process's index follow."""
    proxy_ranges.bump_version(cache)
    selectors.RANGE_CACHE.expire()


def _stored(message_id):
    return list(
        Event.objects.filter(message_id=message_id)
        .order_by("occurred_at")
        .values_list("kind", "label", "automation_kind")
    )


def test_events_store_privacy_proxy_and_automation_kind(engaged):
    ids = engaged["ids"]
    assert _stored(ids[1]) == [("open", "privacy_proxy", "")]
    assert _stored(ids[2]) == [("open", "privacy_proxy", ""), ("click", "human", "")]
    assert _stored(ids[3]) == [("click", "automated", "link_preview")]
    assert _stored(ids[4]) == [("open", "automated", "crawler")]
    assert _stored(ids[5]) == [("click", "automated", "prefetch")]
    assert _stored(ids[6]) == [("click", "automated", "scanner")]
    stat = MessageStat.objects.get(message_id=ids[1])
    assert (stat.open_label, stat.click_label, stat.opens_privacy_proxy) == (2, 0, 1)
    # A person behind the proxy: the human click makes the message a human open.
    stat = MessageStat.objects.get(message_id=ids[2])
    assert (stat.open_label, stat.click_label, stat.opens_privacy_proxy) == (4, 4, 1)
    assert MessageStat.objects.get(message_id=ids[3]).clicks_auto_link_preview == 1


def test_human_only_and_include_automated_count_differently(engaged):
    org.org_settings_update(actor=None, exclude_automated_events=True, count_unknown_events=False)
    filters = reports.Filters(campaign_ids=(engaged["campaign"].pk,))
    human = reports.totals(filters=filters, counting=reports.Counting.from_settings())
    everything = reports.totals(filters=filters, counting=reports.Counting.from_settings("all"))
    # Human only: the two people; the MPP-only message is shown apart and not counted.
    assert (human.opened, human.clicked) == (2, 2)
    assert (human.opened_privacy_proxy, human.opened_automated) == (1, 4)
    # Include automated: every message something opened or clicked.
    assert (everything.opened, everything.clicked) == (7, 5)
    # Privacy-proxy opens (2 fetches) and automated ones (1 crawler + 3 implied by clicks).
    assert everything.opens == human.opens + 2 + 4
    # Opens and clicks by kind; the open each automated click implies takes its kind.
    assert dict(human.automation_kinds) == {
        "Security scanner": 2,
        "Link preview": 2,
        "Crawler / bot": 1,
        "Prefetch": 2,
    }
    assert human.opens_auto_other == human.clicks_auto_other == 0
    # 13 opens and clicks (implied opens included), 7 of them automated.
    assert human.automated_share == pytest.approx(7 / 13)
    assert human.privacy_proxy_share == pytest.approx(2 / 13)
    # Per split row too (here: by subject).
    (row,) = reports.split(filters=filters, by="subject", counting=reports.HUMAN_ONLY)
    assert (row.opened, row.opened_privacy_proxy, row.opens_auto_crawler) == (2, 1, 1)
    assert row.clicks_auto_other == 0


def test_override_validates_and_is_reported():
    org.org_settings_update(actor=None, exclude_automated_events=False)
    default = reports.Counting.from_settings()
    assert (default.events, default.overridden) == ("all", False)
    assert default.labels == ("human", "unknown", "privacy_proxy", "automated")
    human = reports.Counting.from_settings("human")
    assert (human.events, human.overridden) == ("human", True)
    assert "privacy_proxy" not in human.labels
    assert human.labels_of("click") == ("human", "unknown")
    with pytest.raises(reports.ReportFilterError):
        reports.Counting.from_settings("robots")


def test_a_click_is_never_stored_as_privacy_proxy():
    proxied = Verdict(Label.PRIVACY_PROXY, "icloud_private_relay")
    assert ingest.stored_label(proxied, Kind.CLICK) == ("unknown", "")
    assert ingest.stored_label(proxied, Kind.OPEN) == ("privacy_proxy", "")
    legacy = Verdict(Label.AUTOMATED, "apple_mpp")
    assert ingest.stored_label(legacy, Kind.OPEN) == ("privacy_proxy", "")
    named = Verdict(Label.AUTOMATED, "whatever", automation_kind="crawler")
    assert ingest.stored_label(named, Kind.CLICK) == ("automated", "crawler")
    odd = Verdict(Label.AUTOMATED, "whatever", automation_kind="toaster")
    assert ingest.stored_label(odd, Kind.CLICK) == ("automated", "")


def test_page_and_downloads_follow_the_switch(engaged, staff_client):
    org.org_settings_update(actor=None, exclude_automated_events=True, count_unknown_events=False)
    client = staff_client("Marketer")
    page = client.get("/reports/", {"events": "all"})
    assert page.status_code == 200
    assert page.context["counting"].events == "all"
    assert b'id="events-all" checked' in page.content
    assert client.get("/reports/", {"events": "robots"}).status_code == 200  # form error

    def csv_rows(events):
        response = client.get("/reports/export.csv", {"split": "campaign", "events": events})
        assert f"-{events}-" in response["Content-Disposition"]
        table = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
        return [dict(zip(table[0], row, strict=True)) for row in table[1:]]

    human = csv_rows("human")[0]
    everything = csv_rows("all")[0]
    assert human["Opened (unique, counted: human only)"] == "2"
    assert everything["Opened (unique, counted: all events)"] == "7"
    assert human["Opened: privacy proxy only"] == everything["Opened: privacy proxy only"] == "1"
    assert human["Automated clicks: link preview"] == "1"

    response = client.get("/reports/export.xlsx", {"split": "campaign", "events": "all"})
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    sheet = book.worksheets[0]
    header = [cell.value for cell in sheet[1]]
    values = [cell.value for cell in sheet[2]]
    assert values[header.index("Opened (unique, counted: all events)")] == 7
    assert book["About"]["B2"].value == "include automated"


def test_export_helpers_without_counting_keep_plain_headers(engaged):
    rows = reports.split(filters=reports.Filters(), by="campaign", counting=reports.HUMAN_ONLY)
    header = next(csv.reader(io.StringIO(exports.to_csv(rows, split_label="Campaign").decode())))
    assert "Opened (unique, counted)" in header


def test_api_takes_the_switch(engaged):
    org.org_settings_update(actor=None, exclude_automated_events=True, count_unknown_events=False)
    issued = api_services.api_key_create(name="BI", scopes=["reports:read"], actor=engaged["admin"])
    api = Client(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    human = api.get("/api/v1/reports/summary/").json()
    everything = api.get("/api/v1/reports/summary/", {"events": "all"}).json()
    assert (human["counting"]["events"], human["total"]["opened"]) == ("human", 2)
    assert (everything["counting"]["overridden"], everything["total"]["opened"]) == (True, 7)
    assert human["total"]["automation_kinds"]["crawler"] == 1
    split = api.get("/api/v1/reports/split/campaign/", {"events": "all", "sort": "opened"})
    assert split.json()["rows"][0]["opened"] == 7
    assert api.get("/api/v1/reports/summary/", {"events": "robots"}).status_code == 400


def test_ab_winner_and_journey_branches_count_people_only(engaged, make_user):
    admin = engaged["admin"]
    # Variant B: one person clicked. Variant A: a scanner clicked every message.
    variant_a, a = started_campaign(3, actor=admin, domain="a.example")
    variant_b, b = started_campaign(3, actor=admin, domain="b.example")
    built_html(variant_a, a[0])
    built_html(variant_b, b[0])
    sent = timezone.now() - dt.timedelta(hours=2)
    Message.objects.filter(id__in=a + b).update(
        state="sent", channel="tls", sending_at=sent, finished_at=sent
    )
    for message_id in a:
        _entry("c", message_id, variant_a.pk, sent + dt.timedelta(seconds=2), link=1)
    _entry("c", b[0], variant_b.pk, sent + dt.timedelta(minutes=30), link=1)
    drain()
    org.org_settings_update(actor=None, exclude_automated_events=False)  # org counts all
    winner = reports.human_winner(campaign_ids=[variant_a.pk, variant_b.pk])
    assert winner is not None and winner.campaign_id == variant_b.pk
    assert reports.human_winner(campaign_ids=[variant_a.pk]) is not None
    assert reports.human_winner(campaign_ids=[]) is None
    with pytest.raises(reports.ReportFilterError):
        reports.human_winner(campaign_ids=[variant_a.pk], metric="sent")

    # Journey branches: a privacy-proxy fetch or a scanner is not an open.
    ids = engaged["ids"]
    assert selectors.message_engaged(message_id=ids[0])
    assert selectors.message_engaged(message_id=ids[2])  # a person behind MPP clicked
    for machine_only in (ids[1], ids[3], ids[4], ids[6]):
        assert not selectors.message_engaged(message_id=machine_only)


def test_segments_never_count_a_privacy_proxy_fetch_as_an_open_when_human_only():
    org.org_settings_update(actor=None, exclude_automated_events=True, count_unknown_events=True)
    assert sorted(counted_ranks()) == [3, 4]
    org.org_settings_update(actor=None, exclude_automated_events=False)
    assert sorted(counted_ranks()) == [1, 2, 3, 4]


def test_demo_shows_every_label_and_kind(engaged, make_user):
    campaign, ids = started_campaign(40, actor=engaged["admin"], domain="demo.example")
    built_html(campaign, ids[0])
    sent = timezone.now() - dt.timedelta(hours=8)
    Message.objects.filter(id__in=ids).update(
        state="sent", channel="tls", sending_at=sent, finished_at=sent
    )
    Campaign.objects.filter(pk=campaign.pk).update(name=demo.CAMPAIGN)
    demo.populate(actor=engaged["admin"])
    stored = set(
        Event.objects.filter(campaign_id=campaign.pk).values_list("label", "automation_kind")
    )
    assert {("human", ""), ("privacy_proxy", "")} <= stored
    assert {"scanner", "link_preview", "crawler", "prefetch"} <= {kind for _, kind in stored}
    filters = reports.Filters(campaign_ids=(campaign.pk,))
    human = reports.totals(filters=filters, counting=reports.Counting.from_settings("human"))
    everything = reports.totals(filters=filters, counting=reports.Counting.from_settings("all"))
    assert everything.opened > human.opened


@pytest.mark.parametrize("events", ["human", "all"])
def test_every_column_sorts_in_sql(engaged, events):
    counting = reports.Counting.from_settings(events)
    for by in ("campaign", "domain"):
        for sort in sorted(reports.SORTABLE):
            page = reports.split_page(
                filters=reports.Filters(), by=by, counting=counting, sort=sort, limit=5
            )
            assert page.total_rows >= 1, (by, sort)
