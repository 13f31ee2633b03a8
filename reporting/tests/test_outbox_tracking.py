"""Looking at a message is not the recipient opening it (issue 12 item 7).

A message built by the real send pipeline (open pixel and click redirects in it) is
stored in the dev Outbox's sink; a staff user opens it there and, like a browser,
loads every image of the HTML frame and follows every link. No tracking event may
result. Previews carry no tracking URLs at all.
"""

from __future__ import annotations

import re

import pytest

from campaigns.sending import delivery
from luxmail.management.commands.run_smtp_sink import EmlWriter
from reporting.models import Event, PendingEvent
from reporting.tests.helpers import (
    BROWSER,
    LINKS_HTML,
    drain,
    hit,
    mark_sent,
    path_of,
    started_campaign,
)

pytestmark = pytest.mark.django_db

_URLS = re.compile(r'(?:src|href)="([^"]+)"')


def _built(campaign, message_id: int) -> bytes:
    prepared = delivery.prepare(campaign, cache=False)
    return delivery.build_one(
        prepared,
        message_id=message_id,
        email="someone@example.test",
        context={"contact": {"first_name": "Ana", "external_id": "X1"}, "phi": {}},
        contact_id=None,
        relay_security="none",
    ).data


def test_opening_a_message_in_the_outbox_records_no_tracking_event(
    settings, tmp_path, staff_client, tracking_buffer
) -> None:
    settings.LUXMAIL_DEV_OUTBOX = True
    settings.LUXMAIL_SINK_DIR = tmp_path / "sink"
    campaign, ids = started_campaign(1, html=LINKS_HTML)
    mark_sent(ids)
    data = _built(campaign, ids[0])
    assert b"/t/o/" in data.replace(b"=\r\n", b"")  # the pixel really is in the mail
    name = (
        EmlWriter(settings.LUXMAIL_SINK_DIR)
        .store(mail_from="bounces@clinic.example", rcpt_tos=["someone@example.test"], content=data)
        .name
    )

    client = staff_client("PHI Marketer")
    page = client.get(f"/dev/outbox/{name}/")
    frame = client.get(f"/dev/outbox/{name}/html/")
    assert page.status_code == frame.status_code == 200
    html = frame.content.decode()
    # The browser: every image loads, every link of our own site is followed.
    base = settings.LUXMAIL_BASE_URL.rstrip("/")
    for url in _URLS.findall(html):
        if url.startswith(base):
            hit(client, path_of(url), agent=BROWSER)
    drain()
    assert not Event.objects.exists()
    assert not PendingEvent.objects.exists()
    assert "/t/o/" not in html and "/t/c/" not in html
    assert "about:blank#tracking-disabled-in-outbox" in html
    assert "/t/" not in page.content.decode()


def test_template_preview_carries_no_tracking_url(staff_client) -> None:
    response = staff_client("Marketer").post(
        "/campaigns/templates/preview/", {"name": "x", "subject": "Hi", "html": LINKS_HTML}
    )
    assert response.status_code == 200
    assert b"/t/o/" not in response.content and b"/t/c/" not in response.content
