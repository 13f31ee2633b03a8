"""Blank PHI never reaches patients (issue 12 item 5).

A template printing ``{{ phi.next_appointment }}`` unguarded is not sent to a contact
without an appointment: the message is skipped with the field's name. Guards
(``default``, ``{% if %}``) render instead. The review page counts who lacks each
field, and the preview renders "as a contact with missing fields".
"""

from __future__ import annotations

import email
import email.policy

import pytest
from django.utils import timezone

from campaigns import services
from campaigns.content import fields, templating
from campaigns.models import MessageState
from campaigns.sending import delivery
from campaigns.tests.factories import make_campaign
from contacts import services as contact_services
from contacts.models import Consent
from luxmail import roles
from luxmail.models import AuditEvent, SecurePolicy

pytestmark = [pytest.mark.postgres, pytest.mark.smtp, pytest.mark.django_db]

APPOINTMENT = (
    "<p>Dear {{ contact.first_name }}, your appointment is on {{ phi.next_appointment }} "
    "with {{ phi.primary_provider|default('your care team') }}.</p>"
    "{% if phi.insurance_plan %}<p>Plan: {{ phi.insurance_plan }}</p>{% endif %}"
)


def _guarded(source: str) -> dict[str, bool]:
    return {r.label: r.guarded for r in fields.references(source)}


def test_references_are_classified_guarded_or_required() -> None:
    assert _guarded(APPOINTMENT) == {
        "contact.first_name": False,
        "phi.next_appointment": False,
        "phi.primary_provider": True,
        "phi.insurance_plan": True,
    }
    assert _guarded("{{ phi['zip_code'] }}") == {"phi.zip_code": False}
    assert _guarded("{{ phi.sex|upper|d('?') }}") == {"phi.sex": True}
    assert _guarded("{{ phi.custom.plan|d('?') }}") == {"phi.custom": True}
    assert _guarded("{% if phi.age is defined %}{{ phi.age }}{% endif %}") == {"phi.age": True}
    assert _guarded("{% if not phi.age %}none{% else %}{{ phi.age }}{% endif %}") == {
        "phi.age": True
    }
    assert _guarded("{{ phi.age if phi.age else 'n/a' }}") == {"phi.age": True}
    assert _guarded("{{ phi.age or 'ageless' }}") == {"phi.age": True}
    # A test of another field guards nothing; a comparison is not a presence test.
    assert _guarded("{% if phi.sex %}{{ phi.age }}{% endif %}") == {
        "phi.sex": True,
        "phi.age": False,
    }
    assert _guarded("{% if phi.age > 60 %}senior{% endif %}") == {"phi.age": False}
    assert [
        r.guarded for r in fields.references("{% if phi.age and phi.age > 60 %}s{% endif %}")
    ] == [True, True]
    # {% elif %} and {% else %} branches.
    source = "{% if phi.sex %}a{% elif phi.age %}{{ phi.age }}{% else %}{{ phi.sex }}{% endif %}"
    assert [r.guarded for r in fields.references(source)] == [True, True, True, False]
    assert fields.required_fields(subject="Hi", html=APPOINTMENT) == [
        ("contact", "first_name"),
        ("phi", "next_appointment"),
    ]


def test_default_and_defined_treat_a_blank_value_as_missing() -> None:
    # Missing values arrive as "" in the context: the guards must still apply.
    context = {"phi": {"next_appointment": "", "age": None}}
    html = "{{ phi.next_appointment|default('soon') }}|{{ phi.age|d('?') }}"
    assert templating.render_string(html, context, html=True) == "soon|?"
    guarded = "{% if phi.next_appointment is defined %}on {{ phi.next_appointment }}{% endif %}"
    assert templating.render_string(guarded, context, html=True) == ""
    assert fields.missing(context, [("phi", "next_appointment"), ("phi", "age")]) == [
        "phi.next_appointment",
        "phi.age",
    ]


def _patient(admin, email_address: str, **phi: str):
    contact = contact_services.contact_create(
        data={"email": email_address, "first_name": "Robin", **phi}, actor=admin
    )
    for purpose in ("marketing", "phi_marketing"):
        Consent.objects.create(
            contact=contact, purpose=purpose, source="import", granted_at=timezone.now()
        )
    return contact


def _campaign(admin, contacts):
    return make_campaign(
        contact_ids=[c.pk for c in contacts],
        actor=admin,
        html=APPOINTMENT,
        subject="Your visit",
        secure_policy=SecurePolicy.TLS_OR_BETTER,
    )


def test_recipient_missing_a_required_field_is_skipped_with_its_name(
    postgres, sink, admin, caplog
) -> None:
    booked = _patient(admin, "booked@example.test", next_appointment="2026-12-24")
    unbooked = _patient(admin, "unbooked@example.test")
    campaign = _campaign(admin, [booked, unbooked])
    assert services.campaign_start(campaign=campaign, actor=admin) == 2
    delivery.send_batch(campaign_id=campaign.pk, limit=50)

    assert sink.recipients() == ["booked@example.test"]
    parsed = email.message_from_bytes(sink.messages[0].data, policy=email.policy.default)
    html = parsed.get_body(("html",)).get_content()
    assert "2026-12-24" in html and "your care team" in html  # the default filled the hole
    assert "Plan:" not in html
    skipped = campaign.messages.get(contact=unbooked)
    assert skipped.state == MessageState.SKIPPED
    assert "phi.next_appointment" in skipped.smtp_reply
    assert "2026" not in skipped.smtp_reply  # names only, never values
    assert campaign.messages.get(contact=booked).state == MessageState.SENT
    assert "2026-12-24" not in caplog.text


def test_campaign_page_lists_the_skip_reason(postgres, sink, admin, staff_client) -> None:
    unbooked = _patient(admin, "unbooked@example.test")
    campaign = _campaign(admin, [unbooked])
    services.campaign_start(campaign=campaign, actor=admin)
    delivery.send_batch(campaign_id=campaign.pk, limit=50)
    page = staff_client(roles.MARKETER).get(f"/campaigns/{campaign.pk}/")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'id="skipped"' in body and "phi.next_appointment" in body


def test_review_page_counts_recipients_missing_each_field(
    postgres, admin, staff_client, caplog
) -> None:
    contacts = [
        _patient(admin, "a@example.test", next_appointment="2026-12-24", primary_provider="Dr A"),
        _patient(admin, "b@example.test", next_appointment="2026-12-25"),
        _patient(admin, "c@example.test"),
    ]
    campaign = _campaign(admin, contacts)
    client = staff_client(roles.MARKETER)
    before = AuditEvent.objects.filter(action="phi.access").count()
    page = client.get(f"/campaigns/{campaign.pk}/review/")
    assert page.status_code == 200
    body = page.content.decode()
    assert '<td data-field="phi.next_appointment">1</td>' in body
    assert '<td data-field="phi.primary_provider">2</td>' in body
    assert '<td data-field="contact.first_name">0</td>' in body
    assert 'id="fields-skipped">1 recipient will be skipped' in body
    assert "2026-12-2" not in body and "Dr A" not in body
    assert "2026-12-2" not in caplog.text
    audited = AuditEvent.objects.filter(action="phi.access").order_by("-id")
    assert audited.count() == before + 1
    assert audited[0].details["purpose"] == "campaign.review"


def test_preview_as_a_contact_with_missing_fields(postgres, staff_client) -> None:
    client = staff_client(roles.MARKETER)
    form = {"name": "x", "subject": "Your visit", "html": APPOINTMENT}
    normal = client.post("/campaigns/templates/preview/", form)
    assert b"2026-12-01" in normal.content  # sample data
    blank = client.post("/campaigns/templates/preview/", {**form, "preview_missing": "on"})
    text = blank.content.decode()
    assert "would be skipped" in text
    assert "contact.first_name, phi.next_appointment" in text
    guarded = {
        **form,
        "html": "<p>Your appointment: {{ phi.next_appointment|default('we will call you') }}</p>",
        "preview_missing": "on",
    }
    shown = client.post("/campaigns/templates/preview/", guarded)
    assert b"we will call you" in shown.content
