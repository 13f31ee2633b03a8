"""Test data for journeys: definitions built like the API's JSON, contacts with dates."""

from __future__ import annotations

import uuid
from typing import Any

from campaigns import services as campaign_services
from campaigns.content import footer
from campaigns.journeys import services
from campaigns.models import Journey
from campaigns.tests.factories import make_sender
from luxmail.actors import Actor

REMINDER_HTML = (
    "<html><body><p>Hello {{ contact.first_name }},</p>"
    '<p>Your visit is coming up. <a href="https://clinic.example/confirm">Confirm</a></p>'
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p></body></html>'
)


def make_template(
    actor: Actor = None, *, subject: str = "Your visit", html: str = REMINDER_HTML
) -> Any:
    return campaign_services.template_create(
        name=f"Journey template {uuid.uuid4().hex[:8]}",
        subject=subject,
        html=footer.footer_insert(html),
        actor=actor,
    )


def send_step(key: str, template: Any, sender: Any, follow: str, name: str = "") -> dict[str, Any]:
    return {
        "key": key,
        "kind": "send",
        "name": name or key,
        "config": {"template": template.pk, "sender": sender.pk},
        "next": follow,
    }


def reminder_definition(
    *, actor: Actor = None, trigger: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    """send → wait 2 days → branch on a human open within 2 days → follow-up to the
    others → exit (the issue's 3-step reminder)."""
    sender = extra.pop("sender", None) or make_sender(actor)
    first = extra.pop("first", None) or make_template(actor, subject="Your visit is coming up")
    second = extra.pop("second", None) or make_template(
        actor, subject="A reminder about your visit"
    )
    return {
        "trigger": trigger or {"kind": "manual"},
        "reentry": extra.pop("reentry", {"mode": "once"}),
        "goal": extra.pop("goal", None),
        "entry": "reminder",
        "steps": [
            send_step("reminder", first, sender, "wait", "Reminder"),
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
                "name": "Opened?",
                "config": {
                    "mode": "engagement",
                    "event": "opened",
                    "step": "reminder",
                    "within_days": 2,
                },
                "next": "done",
                "no": "follow_up",
            },
            send_step("follow_up", second, sender, "done", "Follow-up"),
            {"key": "done", "kind": "exit", "name": "Done"},
        ],
        **extra,
    }


def active_journey(definition: dict[str, Any], *, actor: Actor = None, name: str = "") -> Journey:
    journey = services.journey_create(
        name=name or f"Journey {uuid.uuid4().hex[:8]}",
        definition=definition,
        actor=actor,
        allow_phi=True,
    )
    return services.journey_activate(journey=journey, actor=actor)


def contacts_with_dates(
    rows: list[dict[str, Any]], *, actor: Actor, consent: tuple[str, ...] = ("marketing",)
) -> list[Any]:
    """Contacts through the real upsert (tokens included), with consents; returns them in
    the order given."""
    from django.utils import timezone

    from contacts import services as contact_services
    from contacts.models import Consent, Contact
    from contacts.selectors import contact_by_email

    result = contact_services.contacts_bulk_upsert(rows=rows, actor=actor)
    assert result.ok, result.errors
    contacts = [contact_by_email(email=row["email"]) for row in rows]
    assert all(contacts)
    Consent.objects.bulk_create(
        [
            Consent(contact=c, purpose=p, source="import", granted_at=timezone.now())
            for c in contacts
            for p in consent
        ]
    )
    return [Contact.objects.get(pk=c.pk) for c in contacts]
