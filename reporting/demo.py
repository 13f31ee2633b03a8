"""Demo data for ``make run``: the shipped proxy/gateway ranges, and engagement for the
demo's sent campaign, so the reports show something.

The events go through the real classifier (``ingest.ingest_entries``): people opening
and clicking in ordinary browsers and mail apps, Apple Mail Privacy Protection fetching
every pixel (labelled privacy_proxy: delivered to a mail client, not proof of reading),
Gmail's image proxy, a link scanner sweeping every link of one message seconds after
delivery — followed, forty minutes later, by the recipient's own click, which counts as
human — and the other kinds of machines the reports break automated events into: chat
apps unfurling a forwarded link (link preview), a crawler, and a browser prefetching a
link. The report page's "human only / include automated" switch visibly changes the
numbers. Idempotent: every event has a fixed source id.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from campaigns.models import Campaign, Message
from luxmail import demo
from luxmail.actors import Actor, user_of
from reporting import abtest_demo, ingest, proxy_ranges, services, tracking
from reporting.models import ProxyRange, ReportSchedule

CAMPAIGN = "Autumn newsletter 2026"  # campaigns/demo.py
BROWSERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)",
)
GOOGLE_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)
APPLE_MPP = "Mozilla/5.0"
# Two prefixes of Apple's published egress list (mask-api.icloud.com/egress-ip-ranges.csv):
# the demo's Apple MPP fetches come from here, so they are labelled privacy_proxy. A real
# installation loads the whole list (``manage.py load_proxy_ranges --apple``), which
# replaces these rows.
APPLE_EGRESS_SAMPLE = "172.224.224.0/27,US,US-CA,Cupertino,\n172.224.226.0/27,US,US-CA,Cupertino,\n"
SCANNER_IP = "40.92.12.34"  # a Microsoft Exchange Online Protection range (seed list)
LINK_PREVIEW = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"
CRAWLER = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


@demo.register
def populate(*, actor: Actor) -> None:
    """Load the seed ranges, then demo events for the demo campaign (if it was sent)."""
    services.proxy_ranges_replace(
        source="seed",
        specs=proxy_ranges.read_seed().ranges,
        actor=actor,
        location=proxy_ranges.SEED_PATH.name,
        published=proxy_ranges.seed_published(),
    )
    if not ProxyRange.objects.filter(source="apple_egress").exists():
        services.proxy_ranges_replace(
            source="apple_egress",
            specs=proxy_ranges.parse_apple_egress(APPLE_EGRESS_SAMPLE).ranges,
            actor=actor,
        )

    _schedule_weekly_report(actor)
    abtest_demo.populate()  # the demo A/B test gets its engagement and its winner
    campaign = Campaign.objects.filter(name=CAMPAIGN, started_at__isnull=False).first()
    if campaign is None:
        return  # the campaigns demo did not send it: nothing to engage with
    messages = list(
        Message.objects.filter(campaign=campaign, state="sent")
        .order_by("id")
        .values_list("id", "finished_at")
    )
    if not messages:
        return
    links = tracking.plan_for_sending(campaign.pk).link_count
    entries: list[tuple[str, dict[str, Any]]] = []

    def add(
        message_id: int,
        number: int,
        kind: str,
        at: dt.datetime,
        ua: str,
        ip: str,
        link: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        entry: dict[str, Any] = {
            "k": kind,
            "m": message_id,
            "c": campaign.pk,
            "t": at.timestamp(),
            "ip": ip,
            "ua": ua,
        }
        if link is not None:
            entry["l"] = link
        if headers:
            entry["h"] = headers
        entries.append((f"demo:{message_id}:{number}", entry))

    for position, (message_id, finished) in enumerate(messages):
        sent = finished or campaign.started_at
        assert sent is not None
        ip = f"198.51.100.{position % 250 + 1}"
        if position % 3 == 0:  # Apple Mail: the proxy fetches the pixel right away
            add(message_id, 1, "o", sent + dt.timedelta(seconds=40), APPLE_MPP, "172.224.226.9")
        if position % 4 == 1:  # Gmail shows the images when the person opens
            add(message_id, 2, "o", sent + dt.timedelta(minutes=12), GOOGLE_PROXY, "66.249.84.3")
        if position % 2 == 0:  # a person opens…
            add(
                message_id,
                3,
                "o",
                sent + dt.timedelta(minutes=5 + position % 50),
                BROWSERS[position % len(BROWSERS)],
                ip,
            )
            if position % 6 == 0 and links:  # …and clicks
                add(
                    message_id,
                    4,
                    "c",
                    sent + dt.timedelta(minutes=7 + position % 50),
                    BROWSERS[position % len(BROWSERS)],
                    ip,
                    link=1,
                )
        if position % 7 == 3 and links:  # a link scanner sweeps every link on arrival…
            for number in range(links):
                add(
                    message_id,
                    10 + number,
                    "c",
                    sent + dt.timedelta(seconds=2 + number),
                    BROWSERS[0],
                    SCANNER_IP,
                    link=number + 1,
                )
            # …and the recipient clicks forty minutes later: a human click.
            add(message_id, 20, "c", sent + dt.timedelta(minutes=40), BROWSERS[1], ip, link=1)
        if position % 5 == 2 and links:  # forwarded into a chat: the app unfurls the link
            later = sent + dt.timedelta(hours=3)
            add(message_id, 30, "c", later, LINK_PREVIEW, "3.208.10.20", link=1)
        if position % 11 == 4:  # a crawler fetches the pixel of a message posted online
            add(message_id, 31, "o", sent + dt.timedelta(hours=5), CRAWLER, "66.249.66.1")
        if position % 9 == 5 and links:  # the mail app's browser prefetches the first link
            add(
                message_id,
                32,
                "c",
                sent + dt.timedelta(minutes=20),
                BROWSERS[0],
                ip,
                link=1,
                headers={"sec_purpose": "prefetch"},
            )
    ingest.ingest_entries(entries)


WEEKLY_REPORT = "Weekly campaign numbers"


def _schedule_weekly_report(actor: Actor) -> None:
    """A weekly PDF report by campaign to the demo Admin (Reports → Schedule by e-mail);
    it lands in the Outbox the first Monday morning ``make run`` is up."""
    user = user_of(actor)
    if user is None or ReportSchedule.objects.filter(name=WEEKLY_REPORT).exists():
        return
    services.report_schedule_create(
        name=WEEKLY_REPORT,
        frequency=ReportSchedule.Frequency.WEEKLY,
        fmt=ReportSchedule.Format.PDF,
        split="campaign",
        events="human",
        recipients=[user],
        actor=actor,
    )
