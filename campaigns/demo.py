"""Demo data for ``make run``: a sender identity with DKIM, two templates (one
PHI-bearing), a campaign really sent through the pipeline into the dev sink (over
verified STARTTLS, so its messages show delivery proof), a library template to open in
the visual editor with a saved block, with a legal hold on one of
its recipients, and two PHI campaigns for the approval workflow (issue 17): one
awaiting a Compliance Officer's approval, one approved by the demo Compliance Officer.

Idempotent. ``make run`` prepares the demo before the SMTP sink process starts, so
the campaign is delivered through a short-lived in-process sink that writes the same
``.eml`` files into ``var/mail/`` the dev Outbox lists.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from campaigns import abtest_demo, review_demo, services
from campaigns import feedback_samples as feedback_mails
from campaigns.content import footer
from campaigns.journeys import demo as journeys_demo
from campaigns.models import Campaign, EditorBlock, EmailTemplate, Message, SenderIdentity
from campaigns.sending import bounces, delivery, policy, tokens
from campaigns.sending.transport import RelayConfig, pool
from contacts.models import ContactList, Segment
from luxmail import demo, holds, roles
from luxmail.actors import Actor
from luxmail.models import HoldScope, LegalHold

SENDER = "Demo Health newsletter"
WELCOME = "Autumn newsletter"
PHI_TEMPLATE = "Check-up reminder (PHI)"
CAMPAIGN = "Autumn newsletter 2026"
PAUSED_CAMPAIGN = "Flu clinic reminder"
AWAITING = "Check-up reminder: diabetics over 50 (awaiting approval)"
APPROVED = "Check-up reminder: patient newsletter (approved)"
OFFICER = "demo-compliance"
PHI_SEGMENT = "Diabetics over 50 near 021xx"

WELCOME_HTML = """<html><head><style>
h1 { color: #1b4d7a; font-family: Georgia, serif; }
.cta { background: #1b4d7a; color: #ffffff; padding: 8px 14px; text-decoration: none; }
</style></head><body>
<h1>Hello {{ contact.first_name|default("there") }},</h1>
<p>Our clinics have new evening hours this autumn, and flu shots are available without
an appointment.</p>
<p><a class="cta" href="https://demo-health.example/flu">Find a flu clinic</a></p>
<p><a href="https://demo-health.example/hours">Opening hours</a></p>
<p><a href="{{ unsubscribe_url }}">Unsubscribe</a> · <a href="{{ preferences_url }}">Email
preferences</a><br>{{ org.name }} · {{ org.postal_address }}</p>
</body></html>
"""

# Every field has a default or an {% if %}: a patient without a value gets a sentence
# that still reads well, never a hole (campaigns/content/fields.py).
PHI_HTML = """<p>Dear {{ contact.first_name|default("patient") }},</p>
{% if phi.last_visit %}<p>Your last visit with {{ phi.primary_provider or "us" }} was on
{{ phi.last_visit }}.</p>{% endif %}
{% if phi.age and phi.age >= 50 %}<p>At {{ phi.age }}, a yearly check-up is recommended.</p>
{% endif %}
<p>Your next appointment: {{ phi.next_appointment|default("none booked yet") }}.</p>
<p><a href="https://demo-health.example/book">Book your check-up</a></p>
"""


@demo.register
def populate(*, actor: Actor) -> None:
    sender = SenderIdentity.objects.filter(name=SENDER).first()
    if sender is None:
        sender = services.sender_create(
            name=SENDER,
            from_name="Demo Health",
            from_email="news@demo-health.example",
            reply_to="care@demo-health.example",
            actor=actor,
        )
    welcome = EmailTemplate.objects.filter(name=WELCOME).first() or services.template_create(
        name=WELCOME,
        subject='{{ contact.first_name|default("Hello") }}, flu shots and new evening hours',
        html=footer.footer_insert(WELCOME_HTML),
        actor=actor,
    )
    if not EmailTemplate.objects.filter(name=PHI_TEMPLATE).exists():
        services.template_create(
            name=PHI_TEMPLATE,
            subject="Time for your check-up",
            html=footer.footer_insert(PHI_HTML),
            actor=actor,
        )
    _editor_demo(actor=actor)
    journeys_demo.populate(actor=actor)  # the "Appointment reminder" journey
    _approval_demo(actor=actor, sender=sender)
    review_demo.populate(actor=actor, sender=sender)  # seed list, a checked campaign
    # An A/B test (its winner is decided by reporting/demo.py) and a local-time send.
    abtest_demo.populate(actor=actor, sender=sender, template=welcome, deliver=_deliver_here)
    existing = Campaign.objects.filter(name=CAMPAIGN).first()
    if existing is not None:
        _hold_one_recipient(existing, actor)
        return
    audience = ContactList.objects.filter(name="Patient newsletter").first()
    segment = Segment.objects.order_by("name").first()
    if audience is None and segment is None:
        return  # no contacts demo data: nothing to send to
    campaign = services.campaign_create(
        name=CAMPAIGN,
        actor=actor,
        marketing_id="NEWS-2026-AUTUMN",
        template=welcome,
        sender=sender,
        lists=[audience] if audience else [],
        segments=[] if audience else [segment],
    )
    _send_now(campaign, actor)
    _hold_one_recipient(campaign, actor)
    _feedback(campaign, actor)
    _auto_paused(welcome, sender, audience, segment, actor)


VISUAL_TEMPLATE = "Flu shot campaign (visual editor)"
DEMO_BLOCK = "Book-a-visit button"


def _editor_demo(*, actor: Actor) -> None:
    """A template from the library to open in the visual editor (with the locked footer)
    and one saved block in the editor's "Saved blocks" panel (issue 19)."""
    if not EmailTemplate.objects.filter(name=VISUAL_TEMPLATE).exists():
        services.template_from_library(slug="annual-checkup", name=VISUAL_TEMPLATE, actor=actor)
    if not EditorBlock.objects.filter(name=DEMO_BLOCK).exists():
        services.editor_block_create(
            name=DEMO_BLOCK,
            html='<p style="margin:24px 0"><a href="https://demo-health.example/book" '
            'style="display:inline-block;padding:12px 24px;background-color:#0b5a7a;'
            'color:#ffffff;text-decoration:none;border-radius:6px">Book a visit</a></p>',
            actor=actor,
        )


def _hold_one_recipient(campaign: Campaign, actor: Actor) -> None:
    """A legal hold on the campaign's first recipient: the contact page and the settings
    show it, and ``retention_purge --dry-run`` reports it held."""
    contact_id = (
        campaign.messages.exclude(contact=None).order_by("pk").values_list("contact_id", flat=True)
    ).first()
    if contact_id is None or LegalHold.objects.filter(scope=HoldScope.CONTACT).exists():
        return
    holds.legal_hold_place(
        scope=HoldScope.CONTACT,
        object_id=contact_id,
        reason="Demo: records request REQ-2026-042 (example)",
        actor=actor,
    )


def _self_signed(directory: Path) -> tuple[ssl.SSLContext, str]:
    """A throwaway certificate for 127.0.0.1: the demo sink speaks STARTTLS, so the
    demo messages carry real delivery proof (TLS version, cipher, fingerprint)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "LuxMail demo sink")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "demo-sink.crt"
    key_path = directory / "demo-sink.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context, str(cert_path)


def _send_now(campaign: Campaign, actor: Actor) -> None:
    """Start the campaign and deliver it here, synchronously, into the dev sink folder."""
    _deliver_here(
        [campaign.pk], start=lambda: services.campaign_start(campaign=campaign, actor=actor)
    )


def _deliver_here(campaign_ids: list[int], *, start: Callable[[], Any]) -> None:
    """Run ``start`` (which starts the campaigns), then deliver their due messages here,
    synchronously, into the dev sink folder."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    sink = demo.EmlWriter(Path(settings.LUXMAIL_SINK_DIR))
    with tempfile.TemporaryDirectory() as directory:
        tls, ca_file = _self_signed(Path(directory))
        controller = Controller(
            sink, hostname="127.0.0.1", port=port, tls_context=tls, require_starttls=True
        )
        controller.start()
        try:
            start()
            config = RelayConfig("127.0.0.1", port, "starttls", ca_file=ca_file, timeout=10)
            for campaign_id in campaign_ids:
                while delivery.send_batch(campaign_id=campaign_id, config=config).claimed:
                    pass
                services.campaign_finish_if_done(campaign_id=campaign_id)
        finally:
            pool().close_all()
            controller.stop()


# --- feedback (issue 14): bounces with reasons, sender health, unread mail, auto-pause ----


def _verp(message: Message) -> str:
    return f"bounces+{tokens.make(tokens.BOUNCE, message.pk)}@demo-health.example"


def _feedback(campaign: Campaign, actor: Actor) -> None:
    """Mail the receivers "sent back" about the newsletter, through the real processing."""
    messages = list(Message.objects.filter(campaign=campaign, state="sent").order_by("pk")[:8])
    builders: list[Callable[..., bytes]] = [
        feedback_mails.multi_group_user_unknown,
        feedback_mails.dmarc_refusal,
        feedback_mails.spamhaus_block,
        feedback_mails.mailbox_full,
        feedback_mails.mailbox_full,
        feedback_mails.arf_abuse,
        feedback_mails.auth_failure_report,
        feedback_mails.unreadable,
    ]
    for message, build in zip(messages, builders, strict=False):
        verp = _verp(message)
        headers = f"Return-Path: <{verp}>\r\nSubject: {campaign.name}"
        # The demo names no real address: the VERP token alone binds the report.
        raw = build(verp=verp, headers=headers, recipient=f"patient{message.pk}@demo-isp.example")
        bounces.bounce_process(raw=raw, source="demo", envelope_recipients=[verp])


def _auto_paused(
    template: EmailTemplate,
    sender: SenderIdentity,
    audience: ContactList | None,
    segment: Segment | None,
    actor: Actor,
) -> None:
    """A second campaign one provider refuses for sender-side reasons until it pauses
    itself (its queued messages stay queued; ``make run``'s workers see it paused)."""
    campaign = services.campaign_create(
        name=PAUSED_CAMPAIGN,
        actor=actor,
        marketing_id="FLU-2026",
        template=template,
        sender=sender,
        lists=[audience] if audience else [],
        segments=[] if audience else [segment],
    )
    services.campaign_start(campaign=campaign, actor=actor)
    limit = policy.current().autopause_provider_blocks
    for message in Message.objects.filter(campaign=campaign).order_by("pk")[:limit]:
        verp = _verp(message)
        raw = feedback_mails.spamhaus_block(
            verp=verp,
            headers=f"Return-Path: <{verp}>",
            recipient=f"patient{message.pk}@demo-isp.example",
            mta="mx1.demo-isp.example",
        )
        bounces.bounce_process(raw=raw, source="demo", envelope_recipients=[verp])
        if Campaign.objects.get(pk=campaign.pk).status != "sending":
            break


def _officer() -> Any:
    """The demo Compliance Officer: decides the approved campaign. It has no password;
    an Admin can set one in Django admin to try the approval screen as an officer."""
    user_model = get_user_model()
    officer, created = user_model.objects.get_or_create(
        username=OFFICER,
        defaults={
            "email": "compliance@demo.luxmail.invalid",
            "first_name": "Demo",
            "last_name": "Officer",
        },
    )
    if created:
        officer.set_unusable_password()
        officer.save()
    roles.sync_roles()
    officer.groups.add(Group.objects.get(name=roles.COMPLIANCE_OFFICER))
    return officer


def _approval_demo(*, actor: Actor, sender: SenderIdentity) -> None:
    """A PHI campaign awaiting approval and an approved one (campaigns/services/approvals.py)."""
    template = EmailTemplate.objects.filter(name=PHI_TEMPLATE).first()
    segment = Segment.objects.filter(name=PHI_SEGMENT).first()
    audience = ContactList.objects.filter(name="Patient newsletter").first()
    if template is None or (segment is None and audience is None):
        return  # no contacts demo data
    if not Campaign.objects.filter(name=AWAITING).exists():
        awaiting = services.campaign_create(
            name=AWAITING,
            actor=actor,
            template=template,
            sender=sender,
            segments=[segment] if segment else [],
            lists=[] if segment else [audience],
        )
        services.approval_request(campaign=awaiting, actor=actor)
    if not Campaign.objects.filter(name=APPROVED).exists():
        approved = services.campaign_create(
            name=APPROVED,
            actor=actor,
            template=template,
            sender=sender,
            lists=[audience] if audience else [],
            segments=[] if audience else [segment],
        )
        services.approval_request(campaign=approved, actor=actor)
        services.approval_decide(
            campaign=approved,
            actor=_officer(),
            approve=True,
            note="Reminder reads appointment and visit fields only; portal fallback.",
        )
