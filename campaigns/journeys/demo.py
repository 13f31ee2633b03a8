"""Demo data for ``make run``: an active "Appointment reminder" journey with contacts in
several of its steps (called by ``campaigns/demo.py``).

The journey: 7 days before each demo patient's next appointment (their local date),
send a reminder → wait 2 days → a human open within 2 days? yes: done · no: a
follow-up → done; the goal (leaving early) is being on the "Appointment confirmed"
list. To show contacts in every state, part of the demo replays the last three days
through the real engine with its clock set back (``engine.advance_due(clock=…)``):
their reminders are delivered into the dev sink, some are opened (events through the
real classifier), one patient confirms, and the engine then runs "now" — openers finish,
the others get the follow-up. A second group enters today and waits. Idempotent.
"""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from django.conf import settings
from django.utils import timezone

from campaigns import services
from campaigns.content import footer
from campaigns.journeys import engine, triggers
from campaigns.journeys import services as journey_services
from campaigns.models import EmailTemplate, Journey, JourneyStepCampaign, Message, SenderIdentity
from campaigns.sending import delivery
from campaigns.sending.transport import RelayConfig, pool
from contacts import services as contact_services
from contacts.models import Consent, ContactList
from luxmail import demo
from luxmail.actors import Actor
from reporting import ingest

JOURNEY = "Appointment reminder"
SENDER = "Demo Health newsletter"  # campaigns/demo.py
CONFIRMED = "Appointment confirmed"
REMINDER = "Appointment reminder: one week"
FOLLOW_UP = "Appointment reminder: follow-up"

REMINDER_HTML = """<p>Hello {{ contact.first_name }},</p>
<p>This is a reminder that you have an appointment with us next week.</p>
<p><a href="https://demo-health.example/appointments/confirm">Confirm</a> or
<a href="https://demo-health.example/appointments/reschedule">reschedule</a>.</p>
"""
FOLLOW_UP_HTML = """<p>Hello {{ contact.first_name }},</p>
<p>Your appointment is in a few days. Please let us know whether you can make it.</p>
<p><a href="https://demo-health.example/appointments/confirm">Confirm your visit</a></p>
"""
BROWSER = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148"
)


def populate(*, actor: Actor) -> None:

    if Journey.objects.filter(name=JOURNEY).exists():
        return
    sender = SenderIdentity.objects.filter(name=SENDER).first()
    candidates = list(
        Consent.objects.filter(
            purpose="marketing", revoked_at__isnull=True, contact__status="active"
        )
        .order_by("contact_id")
        .values_list("contact_id", flat=True)
        .distinct()[:14]
    )
    if sender is None or len(candidates) < 14:
        return  # the contacts or campaigns demo data is missing
    reminder = _template(REMINDER, "Your appointment next week", REMINDER_HTML, actor)
    follow_up = _template(FOLLOW_UP, "See you soon?", FOLLOW_UP_HTML, actor)
    confirmed = ContactList.objects.filter(name=CONFIRMED).first() or (
        contact_services.contact_list_create(
            name=CONFIRMED, description="Filled by the EHR when a patient confirms.", actor=actor
        )
    )
    journey = journey_services.journey_create(
        name=JOURNEY,
        description="A week before each visit; a follow-up to those who did not open it.",
        actor=actor,
        definition=_definition(reminder, follow_up, sender, confirmed.pk),
    )
    journey = journey_services.journey_activate(journey=journey, actor=actor)
    version = journey.current_version
    assert version is not None

    now = timezone.now()
    earlier, today = candidates[:8], candidates[8:]
    started = now - dt.timedelta(days=3)
    triggers.enroll_ids(
        journey=journey, version=version, contact_ids=earlier, source="date", now=started
    )
    engine.advance_due(clock=lambda: started, enqueue=False)
    _deliver(journey)
    _opens(journey, earlier[:3], at=started + dt.timedelta(hours=3))
    contact_services.list_members_add(contact_list=confirmed, contact_ids=[earlier[7]], actor=actor)
    triggers.enroll_ids(journey=journey, version=version, contact_ids=today, source="date", now=now)
    engine.advance_due(enqueue=False)
    _deliver(journey)


def _template(name: str, subject: str, html: str, actor: Actor) -> EmailTemplate:
    found = EmailTemplate.objects.filter(name=name).first()
    return found or services.template_create(
        name=name, subject=subject, html=footer.footer_insert(html), actor=actor
    )


def _definition(
    reminder: EmailTemplate, follow_up: EmailTemplate, sender: SenderIdentity, confirmed: int
) -> dict[str, Any]:
    return {
        "trigger": {"kind": "date", "field": "next_appointment", "offset_days": -7},
        "reentry": {"mode": "after_days", "days": 30},
        "goal": {"field": "list", "op": "eq", "value": confirmed},
        "consent": "marketing",
        "entry": "reminder",
        "steps": [
            {
                "key": "reminder",
                "kind": "send",
                "name": "Reminder",
                "config": {"template": reminder.pk, "sender": sender.pk},
                "next": "wait",
            },
            {
                "key": "wait",
                "kind": "wait",
                "name": "Two days",
                "config": {"mode": "duration", "days": 2},
                "next": "opened",
            },
            {
                "key": "opened",
                "kind": "branch",
                "name": "Opened it?",
                "config": {
                    "mode": "engagement",
                    "event": "opened",
                    "step": "reminder",
                    "within_days": 2,
                },
                "next": "done",
                "no": "follow_up",
            },
            {
                "key": "follow_up",
                "kind": "send",
                "name": "Follow-up",
                "config": {"template": follow_up.pk, "sender": sender.pk},
                "next": "done",
            },
            {"key": "done", "kind": "exit", "name": "Done"},
        ],
    }


def _deliver(journey: Journey) -> None:
    """Send the journey's queued messages now, into the dev sink's folder (the demo runs
    before the sink and worker processes start)."""

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    controller = Controller(
        demo.EmlWriter(Path(settings.LUXMAIL_SINK_DIR)), hostname="127.0.0.1", port=port
    )
    controller.start()
    try:
        config = RelayConfig("127.0.0.1", port, "none", timeout=10)
        for campaign_id in JourneyStepCampaign.objects.filter(
            step__version__journey=journey
        ).values_list("campaign_id", flat=True):
            while delivery.send_batch(campaign_id=campaign_id, config=config).claimed:
                pass
            services.campaign_finish_if_done(campaign_id=campaign_id)
    finally:
        pool().close_all()
        controller.stop()


def _opens(journey: Journey, contact_ids: list[int], *, at: dt.datetime) -> None:
    """People opening their reminder in a mail app, through the real classifier."""

    entries = []
    for number, (message_id, campaign_id) in enumerate(
        Message.objects.filter(
            journey_run__enrollment__journey=journey,
            journey_run__step__key="reminder",
            contact_id__in=contact_ids,
        ).values_list("id", "campaign_id")
    ):
        entries.append(
            (
                f"demo-journey:{message_id}",
                {
                    "k": "o",
                    "m": message_id,
                    "c": campaign_id,
                    "t": at.timestamp(),
                    "ip": f"198.51.100.{number + 20}",
                    "ua": BROWSER,
                },
            )
        )
    ingest.ingest_entries(entries)
