"""Demo engagement for the demo A/B test (``campaigns/abtest_demo.py``), called from
``reporting/demo.py``: a link scanner clicks every message of variant A seconds after
delivery, people open and click variant B; then the test, its wait declared over,
chooses B on human clicks and sends it to the rest of the list (the worker of
``make run`` delivers it into the Outbox). Idempotent: fixed event ids, and a decided
test is left alone."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from campaigns.models import ABTest, ABTestState, Message
from reporting import abtests, ingest, tracking

ABTEST_CAMPAIGN = "Flu shot drive 2026 (A/B test)"  # campaigns/abtest_demo.py
BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36"
)
SCANNER_IP = "40.92.12.34"  # Exchange Online Protection (seed list): a link scanner


def populate() -> None:
    test = ABTest.objects.filter(campaign__name=ABTEST_CAMPAIGN).first()
    if test is None or test.state != ABTestState.TESTING:
        return
    entries: list[tuple[str, dict[str, Any]]] = []
    for variant in test.variants.all():
        tracking.plan_for_sending(variant.campaign_id)
        rows = Message.objects.filter(campaign_id=variant.campaign_id, state="sent").values_list(
            "id", "finished_at"
        )
        for position, (message_id, finished) in enumerate(rows.order_by("id")):
            sent = finished or timezone.now()
            base = {"m": message_id, "c": variant.campaign_id, "l": 1}
            if variant.label == "A":  # the scanner clicks everything, seconds after delivery
                at = sent + dt.timedelta(seconds=3)
                entry = {**base, "k": "c", "t": at.timestamp(), "ip": SCANNER_IP, "ua": BROWSER}
                entries.append((f"demo-ab:{message_id}:scan", entry))
            if variant.label == "A" and position % 4 != 0:
                continue
            if variant.label == "B" and position % 3 == 2:
                continue
            ip = f"198.51.100.{position % 200 + 20}"
            opened = sent + dt.timedelta(minutes=8 + position)
            entries.append(
                (
                    f"demo-ab:{message_id}:open",
                    {**base, "k": "o", "t": opened.timestamp(), "ip": ip, "ua": BROWSER},
                )
            )
            clicked = opened + dt.timedelta(minutes=2)
            entries.append(
                (
                    f"demo-ab:{message_id}:click",
                    {**base, "k": "c", "t": clicked.timestamp(), "ip": ip, "ua": BROWSER},
                )
            )
    ingest.ingest_entries(entries)
    # The demo does not wait four hours: the wait is declared over and the beat task's
    # decision runs now.
    ABTest.objects.filter(pk=test.pk).update(decide_after=timezone.now())
    abtests.abtests_decide_due()
