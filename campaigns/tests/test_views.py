"""The campaigns UI: template editor and preview, sender identities, the wizard, progress."""

from __future__ import annotations

import pytest
from django.utils.html import escape

from campaigns.content import footer
from campaigns.models import Campaign, CampaignStatus, EmailTemplate, SenderIdentity
from campaigns.tests.factories import make_contacts, make_list, make_sender
from luxmail import roles
from luxmail.models import AuditEvent

pytestmark = [pytest.mark.postgres, pytest.mark.smtp, pytest.mark.django_db(transaction=True)]

HTML = '<p>Hi {{ contact.first_name }}</p><p><a href="{{ unsubscribe_url }}">Leave</a></p>'


def test_template_editor_validates_and_previews(postgres, staff_client) -> None:
    client = staff_client(roles.MARKETER)
    bad = client.post(
        "/campaigns/templates/new/",
        {"name": "Bad", "subject": "Hi", "html": "<p>\n{{ ''.__class__ }}{% if %}</p>"},
    )
    assert bad.status_code == 200
    assert "HTML body line 2" in bad.content.decode()
    saved = client.post(
        "/campaigns/templates/new/", {"name": "Welcome", "subject": "Hi", "html": HTML}
    )
    template = EmailTemplate.objects.get(name="Welcome")
    assert saved.status_code == 302 and not template.phi_bearing
    page = client.get(f"/campaigns/templates/{template.pk}/")
    assert b"preview-frame" in page.content
    frame = client.post(
        "/campaigns/templates/preview/", {"name": "x", "subject": "Hi", "html": HTML}
    )
    assert frame.status_code == 200
    assert b"Hi Pat" in frame.content  # sample data
    assert "unsafe-inline" in frame["Content-Security-Policy"]
    assert "script-src 'none'" in frame["Content-Security-Policy"]
    # A Marketer may not preview with a real contact's data.
    contact_id = make_contacts(1)[0]
    denied = client.post(
        "/campaigns/templates/preview/",
        {
            "name": "x",
            "subject": "Hi",
            "html": "<p>{{ phi.age }}</p>",
            "preview_contact": contact_id,
        },
    )
    assert b"only PHI-permitted roles" in denied.content
    assert not AuditEvent.objects.filter(action="phi.access").exists()


def test_phi_preview_is_audited(postgres, staff_client) -> None:
    client = staff_client(roles.PHI_MARKETER)
    contact_id = make_contacts(1, first_name="Zelda")[0]
    frame = client.post(
        "/campaigns/templates/preview/",
        {"name": "x", "subject": "Hi", "html": HTML, "preview_contact": contact_id},
    )
    assert b"Hi Zelda" in frame.content
    event = AuditEvent.objects.get(action="phi.access")
    assert event.details["purpose"] == "template.preview"
    assert event.details["contact_id"] == contact_id


def test_sender_identity_shows_its_dns_record(postgres, staff_client) -> None:
    client = staff_client(roles.MARKETER)
    response = client.post(
        "/campaigns/senders/new/",
        {
            "name": "Clinic",
            "from_name": "Clinic",
            "from_email": "news@clinic.example",
            "dkim_algorithm": "ed25519-sha256",
            "dkim_selector": "lux1",
        },
        follow=True,
    )
    assert b"lux1._domainkey.clinic.example" in response.content
    assert b"v=DKIM1; k=ed25519; p=" in response.content
    assert SenderIdentity.objects.get().dkim_algorithm == "ed25519-sha256"
    assert b"Allow sending without DKIM" not in response.content  # not an Admin


def test_wizard_to_sent_campaign(postgres, sink, staff_client, admin) -> None:
    client = staff_client(roles.MARKETER)
    ids = make_contacts(5)
    make_contacts(2, prefix="nc", consent=())
    audience = make_list("Patients", ids)
    from contacts.models import Contact

    nc = list(Contact.objects.filter(consents__isnull=True).values_list("id", flat=True))
    from contacts.models import ListMembership

    ListMembership.objects.bulk_create(
        [ListMembership(contact_list=audience, contact_id=i) for i in nc]
    )
    template = EmailTemplate.objects.create(
        name="T", subject="Hi", html=footer.footer_insert(HTML), has_locked_footer=True
    )
    sender = make_sender(admin)
    form = {
        "name": "Autumn",
        "lists": [audience.pk],
        "template": template.pk,
        "sender": sender.pk,
        "secure_policy": "tls_or_better",
        "track_opens": "on",
    }
    count = client.post("/campaigns/audience-count/", form)
    assert b"<strong>5</strong> of 7" in count.content and b"2 lack consent" in count.content
    created = client.post("/campaigns/new/", form)
    campaign = Campaign.objects.get(name="Autumn")
    assert created.url == f"/campaigns/{campaign.pk}/review/"
    review = client.get(created.url)
    assert b"2 recipients lack marketing consent and will be skipped" in review.content
    client.post(f"/campaigns/{campaign.pk}/test-send/", {"addresses": "seed@qa.example"})
    assert len(sink.messages) == 1
    sent = client.post(f"/campaigns/{campaign.pk}/schedule/", {"at": ""}, follow=True)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT
    assert b'data-status="sent"' in sent.content
    assert len(sink.messages) == 6
    progress = client.get(f"/campaigns/{campaign.pk}/progress/")
    assert b'data-count="sent">5<' in progress.content
    listing = client.get("/campaigns/")
    assert b"Autumn" in listing.content


def test_viewer_cannot_send(postgres, staff_client) -> None:
    client = staff_client(roles.VIEWER)
    assert client.get("/campaigns/").status_code == 200
    assert client.get("/campaigns/templates/new/").status_code == 403


def test_every_campaigns_model_is_registered_read_only(postgres, staff_client, admin) -> None:
    from django.apps import apps
    from django.contrib import admin as django_admin

    for model in apps.get_app_config("campaigns").get_models():
        assert django_admin.site.is_registered(model), model
    sender = make_sender(admin)
    client = staff_client(roles.ADMIN)
    page = client.get(f"/admin/campaigns/senderidentity/{sender.pk}/change/")
    assert page.status_code == 200
    assert b"dkim_private_key" not in page.content and b"PRIVATE KEY" not in page.content


def test_campaign_list_hides_journey_steps_and_transactional_messages(
    postgres, staff_client
) -> None:
    from campaigns.models import JourneyStepCampaign
    from campaigns.tests.factories import make_campaign
    from campaigns.tests.journey_factories import active_journey, reminder_definition

    contact_ids = make_contacts(3)
    visible = make_campaign(contact_ids=contact_ids)
    hidden = make_campaign(contact_ids=contact_ids)
    Campaign.objects.filter(pk=hidden.pk).update(transactional=True)
    journey = active_journey(reminder_definition())
    step_campaign = make_campaign(contact_ids=contact_ids)
    JourneyStepCampaign.objects.create(
        step=journey.current_version.steps.first(), round=99, campaign=step_campaign
    )
    page = staff_client(roles.MARKETER).get("/campaigns/").content.decode()
    assert visible.name in page
    assert hidden.name not in page and step_campaign.name not in page


@pytest.mark.parametrize(
    ("html", "message"),
    [
        (
            "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
            "{{ f(40) }}",
            "took longer than the time limit",
        ),
        ("{% set x = 'ab' %}" + "{% set x = x ~ x %}" * 40 + "{{ x }}", "is limited to 100,000"),
        ("{{ range(1000)|join('a' * 90000) }}", "the result of join is limited"),
        ("{{ 999999 ** 100 * 999999 ** 100 * 999999 ** 100 }}", "limited to 4,096 bits"),
        ("<p>\n{{ contact['__class__'] }}</p>", "line 2: '__class__' is an internal attribute"),
    ],
)
def test_preview_of_a_hostile_template_shows_a_clear_message(
    postgres, staff_client, html: str, message: str
) -> None:
    client = staff_client(roles.VIEWER)
    frame = client.post(
        "/campaigns/templates/preview/", {"name": "x", "subject": "Hi", "html": html}
    )
    assert frame.status_code == 200
    body = frame.content.decode()
    assert 'class="preview-error"' in body and escape(message) in body
