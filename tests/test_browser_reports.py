"""The report page in a real browser: charts drawn under the strict CSP, the split
switched to recipient domain, and the CSV downloaded.

Screenshots: ``var/screenshots/reports-*.png``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io

import openpyxl
import pytest
from django.core.cache import cache
from django.utils import timezone

from campaigns.models import Message
from luxmail import org
from luxmail.testing import screenshot, sign_in
from reporting import buffer, demo, proxy_ranges, selectors, services
from reporting.tests.conftest import tracking_buffer  # noqa: F401 - fixture
from reporting.tests.helpers import APPLE_MPP, BROWSER, built_html, drain, started_campaign

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _engagement(make_user):
    admin = make_user("Admin")
    campaign, ids = started_campaign(6, actor=admin, domain="north.example", marketing_id="FLU")
    other, more = started_campaign(3, actor=admin, domain="south.example")
    built_html(campaign, ids[0])
    sent = timezone.now() - dt.timedelta(hours=2)
    Message.objects.filter(id__in=ids + more).update(
        state="sent", channel="tls", sending_at=sent, finished_at=sent
    )
    for number, message_id in enumerate(ids[:4]):
        entry = {
            "k": "o",
            "m": message_id,
            "c": campaign.pk,
            "t": (sent + dt.timedelta(minutes=10 + number)).timestamp(),
            "ip": f"198.51.100.{number + 1}",
            "ua": APPLE_MPP if number % 2 else BROWSER,
        }
        buffer.append(entry)
    buffer.append(
        {
            "k": "c",
            "m": ids[0],
            "c": campaign.pk,
            "l": 1,
            "ip": "198.51.100.9",
            "ua": BROWSER,
            "t": (sent + dt.timedelta(minutes=30)).timestamp(),
        }
    )
    assert drain().stored == 5
    return campaign, other


def test_report_page_split_by_domain_and_csv_download(
    browser_page,
    make_user,
    tracking_buffer,  # noqa: F811
):
    _engagement(make_user)
    page = browser_page
    console = []
    page.on("console", lambda message: console.append(message.text))
    page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    sign_in(page, make_user("Marketer"))

    page.goto("/reports/")
    page.wait_for_selector("[data-chart='chart-timeseries'][data-drawn='true'] .main-svg")
    page.wait_for_selector("[data-chart='chart-split'][data-drawn='true'] .main-svg")
    assert page.locator("#split-table tbody tr").count() == 2
    # plotly.js found our stylesheet and added no <style> element of its own.
    assert page.evaluate("document.querySelectorAll('style').length") == 0
    assert (
        page.evaluate(
            "getComputedStyle(document.querySelector('.js-plotly-plot .plotly .main-svg')).position"
        )
        == "absolute"
    )
    screenshot(page, "reports-01-by-campaign")

    page.select_option("#id_split", "domain")  # the form applies it at once (reports.js)
    page.wait_for_url("**split=domain**")
    page.wait_for_selector("#split-table[data-split='domain']")
    domains = page.locator("#split-table tbody th").all_inner_texts()
    assert sorted(domains) == ["north.example", "south.example"]
    screenshot(page, "reports-02-by-domain")

    with page.expect_download() as download_info:
        page.click("#download-csv")
    download = download_info.value
    assert download.suggested_filename.startswith("luxmail-report-domain-")
    with open(download.path(), encoding="utf-8-sig") as handle:
        text = handle.read()
    table = list(csv.reader(io.StringIO(text)))
    header = table[0]
    assert header[0] == "Recipient domain" and "Opened: human" in header
    rows = {row[0]: dict(zip(header, row, strict=True)) for row in table[1:]}
    assert set(rows) == {"north.example", "south.example", "Total"}
    north = rows["north.example"]
    assert (north["Recipients"], north["Delivered"], north["Opened: human"]) == ("6", "6", "2")
    assert north["Opened: automated only"] == "2" and north["Clicked: human"] == "1"
    assert rows["south.example"]["Recipients"] == "3" and rows["Total"]["Recipients"] == "9"

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.wait_for_selector("[data-chart='chart-timeseries'][data-drawn='true'] .main-svg")
    screenshot(page, "reports-03-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1

    page.goto("/")
    page.wait_for_selector("[data-chart='chart-summary'][data-drawn='true'] .main-svg")
    screenshot(page, "reports-04-dashboard")
    problems = [
        text for text in console if "Content Security Policy" in text or "pageerror" in text
    ]
    assert problems == []


@pytest.fixture
def apple_egress(make_user):
    """Two prefixes of Apple's egress list (the demo's): MPP fetches from there are
    privacy_proxy. The rows go with the test's data; the range index follows them."""
    services.proxy_ranges_replace(
        source="apple_egress",
        specs=proxy_ranges.parse_apple_egress(demo.APPLE_EGRESS_SAMPLE).ranges,
        actor=make_user("Admin"),
    )
    yield
    proxy_ranges.bump_version(cache)
    selectors.RANGE_CACHE.expire()


def test_human_only_switch_changes_the_numbers_and_the_downloads(
    browser_page,
    make_user,
    apple_egress,
    tracking_buffer,  # noqa: F811
):
    """Issue #15: the "human only / include automated" switch on the report page, and
    the CSV and XLSX downloads that follow it."""
    page = browser_page
    campaign, _ = _engagement(make_user)  # 2 human opens, 2 bare-agent (automated) opens
    message_id = (
        Message.objects.filter(campaign=campaign).order_by("id").values_list("id", flat=True)[4]
    )
    sent = timezone.now() - dt.timedelta(hours=2)
    buffer.append(  # Apple MPP fetches the pixel of one more message: a privacy proxy
        {
            "k": "o",
            "m": message_id,
            "c": campaign.pk,
            "t": (sent + dt.timedelta(seconds=40)).timestamp(),
            "ip": "172.224.226.9",
            "ua": APPLE_MPP,
        }
    )
    assert drain().stored == 1
    org.org_settings_update(actor=None, exclude_automated_events=True, count_unknown_events=False)

    sign_in(page, make_user("Marketer"))
    page.goto("/reports/")
    page.wait_for_selector("[data-chart='chart-timeseries'][data-drawn='true'] .main-svg")
    assert page.is_checked("#events-human")
    counted = "#total-opened td[data-counted]"
    assert page.inner_text(counted) == "2"
    # counted, human, unknown, privacy proxy, automated: the machines shown apart
    opened = page.locator("#total-opened td").all_inner_texts()
    assert opened[1] == "2" and opened[3].startswith("1") and opened[4].startswith("2")
    assert "organization default" in page.inner_text("#counting-note")
    screenshot(page, "reports-05-human-only")

    page.check("#events-all")  # the form applies it at once (reports.js)
    page.wait_for_url("**events=all**")
    page.wait_for_selector("[data-chart='chart-timeseries'][data-drawn='true'] .main-svg")
    assert page.is_checked("#events-all")
    assert page.inner_text(counted) == "5"
    # The funnel (human only by default) follows the view's switch: all events now
    # (its table view, closed: text_content reads it without opening it).
    funnel = "#table-funnel tbody tr:nth-child(3)"
    assert page.text_content(f"{funnel} th") == "Opened (all events)"
    assert page.text_content(f"{funnel} td") == "5"
    assert "this view" in page.inner_text("#counting-note")
    kinds = page.inner_text("#split-table tbody tr:first-child td[data-column='automation_kinds']")
    assert "prefetch 2" in kinds  # bare "Mozilla/5.0" from outside Apple's ranges
    screenshot(page, "reports-06-include-automated")

    with page.expect_download() as download_info:
        page.click("#download-csv")
    download = download_info.value
    assert "-all-" in download.suggested_filename
    with open(download.path(), encoding="utf-8-sig") as handle:
        table = list(csv.reader(handle))
    rows = {row[0]: dict(zip(table[0], row, strict=True)) for row in table[1:]}
    assert rows["Total"]["Opened (unique, counted: all events)"] == "5"
    assert rows["Total"]["Opened: privacy proxy only"] == "1"

    page.check("#events-human")
    page.wait_for_url("**events=human**")
    assert page.inner_text(counted) == "2"
    assert page.text_content(f"{funnel} th") == "Opened (human)"
    assert page.text_content(f"{funnel} td") == "2"
    with page.expect_download() as download_info:
        page.click("#download-xlsx")
    download = download_info.value
    assert "-human-" in download.suggested_filename
    with open(download.path(), "rb") as handle:
        book = openpyxl.load_workbook(io.BytesIO(handle.read()))
    sheet = book.worksheets[0]
    header = [cell.value for cell in sheet[1]]
    total = [cell.value for cell in sheet[sheet.max_row]]
    assert total[header.index("Opened (unique, counted: human only)")] == 2
    assert book["About"]["B2"].value == "human only"
