"""Building blocks for the tracking and report tests: campaigns really started through
the campaigns services, messages built by the real send pipeline (``build_one``), and
requests through the real tracking endpoints."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.db import transaction
from django.utils import timezone

from campaigns import services
from campaigns.models import Campaign, Message
from campaigns.sending import delivery
from campaigns.tests.factories import make_campaign, make_contacts
from luxmail.actors import Actor
from reporting import ingest, tracking

LINKS_HTML = (
    "<html><body><p>Hello {{ contact.first_name }},</p>"
    '<p><a href="https://clinic.example/flu?x=1&amp;y=2">Flu shots</a></p>'
    '<p><a href="https://clinic.example/hours">Hours</a> and again '
    '<a href="https://clinic.example/flu?x=1&amp;y=2">flu</a></p>'
    '<p><a href="https://clinic.example/book">Book</a></p>'
    '<p><a href="https://clinic.example/p/{{ contact.external_id }}">Your page</a></p>'
    '<p><a href="mailto:care@clinic.example">Write to us</a></p>'
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
    "</body></html>"
)
LINKS = [
    "https://clinic.example/flu?x=1&y=2",
    "https://clinic.example/hours",
    "https://clinic.example/book",
]

BROWSER = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Safari/605.1.15"
)
APPLE_MPP = "Mozilla/5.0"

_CLICK = re.compile(r'href="(https?://[^"]+/t/c/[A-Za-z0-9_-]+)"')
_OPEN = re.compile(r'src="(https?://[^"]+/t/o/[A-Za-z0-9_-]+)"')


def started_campaign(
    n: int = 3,
    *,
    actor: Actor = None,
    domain: str = "example.test",
    html: str = LINKS_HTML,
    honeypot: bool = False,
    prefix: str | None = None,
    **fields: Any,
) -> tuple[Campaign, list[int]]:
    """A campaign started with ``n`` recipients (messages queued, nothing sent)."""
    contact_ids = make_contacts(n, domain=domain, prefix=prefix or f"p{timezone.now().timestamp()}")
    campaign = make_campaign(contact_ids=contact_ids, actor=actor, html=html, **fields)
    if honeypot:
        services_reporting().tracking_options_set(campaign=campaign, honeypot=True, actor=actor)
    with transaction.atomic():
        services.campaign_start(campaign=campaign, actor=actor)
        # The tests play the send workers themselves (mark_sent); the chains that start
        # on commit must find nothing to do, also when tests commit (transaction=True).
        Campaign.objects.filter(pk=campaign.pk).update(status="paused")
    campaign.refresh_from_db()
    ids = list(
        Message.objects.filter(campaign=campaign).order_by("id").values_list("id", flat=True)
    )
    return campaign, ids


def services_reporting() -> Any:
    from reporting import services as reporting_services

    return reporting_services


def mark_sent(
    message_ids: list[int], *, channel: str = "tls", ago: dt.timedelta = dt.timedelta(hours=1)
) -> None:
    """What the send workers write for delivered messages (one statement, like theirs)."""
    moment = timezone.now() - ago
    Message.objects.filter(id__in=message_ids).update(
        state="sent", channel=channel, sending_at=moment, finished_at=moment
    )


def built_html(campaign: Campaign, message_id: int) -> str:
    """The HTML part the send pipeline builds for one message (tracking included)."""
    prepared = delivery.prepare(campaign, cache=False)
    built = delivery.build_one(
        prepared,
        message_id=message_id,
        email="someone@example.test",
        context={"contact": {"first_name": "Ana", "external_id": "X1"}, "phi": {}},
        contact_id=None,
        relay_security="none",
    )
    import email
    import email.policy

    parsed = email.message_from_bytes(built.data, policy=email.policy.default)
    for part in parsed.walk():
        if part.get_content_type() == "text/html":
            return str(part.get_content())
    raise AssertionError("no HTML part")


def tracking_urls(html: str) -> tuple[list[str], list[str]]:
    return _CLICK.findall(html), _OPEN.findall(html)


def path_of(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def click_path(message_id: int, campaign_id: int, index: int) -> str:
    return path_of(
        tracking.click_url(message_id=message_id, campaign_id=campaign_id, link_index=index)
    )


def open_path(message_id: int, campaign_id: int) -> str:
    return path_of(tracking.open_url(message_id=message_id, campaign_id=campaign_id))


def hit(
    client: Any,
    path: str,
    *,
    agent: str = BROWSER,
    ip: str = "198.51.100.7",
    method: str = "get",
    **headers: Any,
) -> Any:
    return getattr(client, method)(path, HTTP_USER_AGENT=agent, REMOTE_ADDR=ip, **headers)


def drain() -> ingest.IngestReport:
    report = ingest.ingest()
    assert not report.busy
    return report
