"""Demo data for issue #19 items 5 and 6 (called from ``campaigns/demo.py``):

* *Flu shot drive 2026 (A/B test)* — two subject lines sent to 20 % of the patient
  newsletter list; ``reporting/demo.py`` adds opens and clicks (a link scanner on A,
  people on B) and lets the test choose its winner, which then goes to the rest.
* *Flu clinic hours at 09:00 local* — scheduled for 09:00 in each patient's own time
  zone the day after tomorrow, with the planned delivery curve on its page.

Idempotent: nothing is created twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.utils import timezone

from campaigns import services
from campaigns.models import Campaign, EmailTemplate, SenderIdentity
from campaigns.services import abtests, delivery_plans
from campaigns.services.abtests import VariantSpec
from contacts.models import ContactList
from luxmail.actors import Actor

ABTEST_CAMPAIGN = "Flu shot drive 2026 (A/B test)"
LOCAL_TIME_CAMPAIGN = "Flu clinic hours at 09:00 local"
AUDIENCE = "Patient newsletter"


def populate(
    *,
    actor: Actor,
    sender: SenderIdentity,
    template: EmailTemplate,
    deliver: Callable[..., None],
) -> None:
    audience = ContactList.objects.filter(name=AUDIENCE).first()
    if audience is None:
        return  # no contacts demo data
    if not Campaign.objects.filter(name=ABTEST_CAMPAIGN).exists():
        campaign = services.campaign_create(
            name=ABTEST_CAMPAIGN,
            actor=actor,
            marketing_id="FLU-2026-AB",
            template=template,
            sender=sender,
            lists=[audience],
        )
        test = abtests.abtest_configure(
            campaign=campaign,
            actor=actor,
            variants=[
                VariantSpec(subject="Flu shots are here: walk in this week"),
                VariantSpec(
                    subject='{{ contact.first_name|default("Hello") }}, your flu shot is waiting'
                ),
            ],
            test_percent=20,
            metric="click_rate",
            wait_hours=4,
            min_sample=5,
            auto_send_winner=True,
        )
        variant_ids = list(test.variants.values_list("campaign_id", flat=True))

        def start() -> Any:
            return abtests.abtest_start(test=test, actor=actor)

        deliver(variant_ids, start=start)
    if not Campaign.objects.filter(name=LOCAL_TIME_CAMPAIGN).exists():
        campaign = services.campaign_create(
            name=LOCAL_TIME_CAMPAIGN,
            actor=actor,
            marketing_id="FLU-2026-HOURS",
            template=template,
            sender=sender,
            lists=[audience],
            throttle_per_minute=2,
        )
        delivery_plans.delivery_plan_set(
            campaign=campaign,
            actor=actor,
            local_date=(timezone.localtime() + dt.timedelta(days=2)).date(),
            local_time=dt.time(9, 0),
            respect_quiet_hours=True,
        )
        delivery_plans.delivery_plan_schedule(campaign=campaign, actor=actor)
