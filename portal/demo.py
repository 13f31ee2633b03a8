"""Demo data for ``make run``: secure channels and the portal, really sent.

* A demo patient whose reminder went to the **portal** (policy ``portal_only``), with a
  secure reply waiting in Secure messages → Replies; the dev Outbox shows the notice
  (no PHI, just the link). Open the link and ask for a code: it arrives in the Outbox.
* A demo patient with an **OpenPGP key** (generated here; the secret key is written to
  ``var/demo-pgp-secret-key.asc`` so you can ``gpg --import`` it and decrypt the message
  the Outbox shows as PGP/MIME), signed by the organization's demo OpenPGP signing key
  (public half in ``var/demo-org-signing-key.asc``; Settings → Signing keys).

Idempotent: nothing is created or sent twice.
"""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path
from typing import Any

import pysequoia
from aiosmtpd.controller import Controller
from django.conf import settings
from django.utils import timezone

from campaigns import services
from campaigns.content import footer
from campaigns.models import EmailTemplate, Message, OrgSigningKey, SenderIdentity
from campaigns.sending import delivery
from campaigns.sending.transport import RelayConfig, pool
from campaigns.transactional import send as transactional
from contacts import services as contact_services
from contacts.keys import services as key_services
from contacts.models import Contact
from contacts.selectors import contact_by_email
from luxmail import demo
from luxmail.actors import Actor
from portal import conversation_demo, signup_demo
from portal import services as portal_services
from portal.models import PortalMessage, PortalReply, PortalSession

PORTAL_PATIENT = "portal.patient@demo-health.example"
PGP_PATIENT = "pgp.patient@demo-health.example"
TEMPLATE = "Appointment reminder (PHI)"
TEMPLATE_HTML = """<p>Dear {{ contact.first_name }},</p>
<p>This is a reminder of your appointment with {{ phi.primary_provider or "your provider" }}
on {{ phi.next_appointment }}.</p>
<p>Please bring your insurance card ({{ phi.insurance_plan or "your plan" }}) and a list of
your current medications.</p>
<p>If you need to change the time, reply securely from this page.</p>
"""


def _patient(address: str, first: str, last: str, actor: Actor) -> Contact:
    existing = contact_by_email(email=address)
    if existing is not None:
        return existing
    visit = timezone.localdate() + dt.timedelta(days=9)
    contact = contact_services.contact_create(
        data={
            "email": address,
            "first_name": first,
            "last_name": last,
            "birth_date": "1958-07-21",
            "primary_provider": "Dr. Amara Okafor",
            "insurance_plan": "Demo Health Gold",
            "next_appointment": visit.isoformat(),
        },
        actor=actor,
        source="demo",
    )
    for purpose in ("marketing", "phi_marketing", "transactional"):
        contact_services.consent_grant(contact=contact, purpose=purpose, source="ehr", actor=actor)
    return contact


class _EmlWriter:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        name = f"{timezone.now():%Y%m%dT%H%M%S}-{envelope.rcpt_tos[0].split('@')[0][:12]}.eml"
        path = self.directory / name
        counter = 1
        while path.exists():
            counter += 1
            path = self.directory / f"{path.stem}-{counter}.eml"
        path.write_bytes(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


def _deliver(messages: list[Message]) -> None:
    """Deliver now into the dev sink folder (the sink process is not running yet)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    controller = Controller(
        _EmlWriter(Path(settings.LUXMAIL_SINK_DIR)), hostname="127.0.0.1", port=port
    )
    controller.start()
    try:
        config = RelayConfig("127.0.0.1", port, "none", timeout=10)
        for message in messages:
            delivery.send_batch(campaign_id=message.campaign_id, config=config)
            services.campaign_finish_if_done(campaign_id=message.campaign_id)
    finally:
        pool().close_all()
        controller.stop()


@demo.register
def populate(*, actor: Actor) -> None:
    sender = SenderIdentity.objects.order_by("id").first()
    if sender is None:
        sender = services.sender_create(
            name="Demo Health care team",
            from_name="Demo Health",
            from_email="care@demo-health.example",
            reply_to="care@demo-health.example",
            actor=actor,
        )
    template = EmailTemplate.objects.filter(name=TEMPLATE).first() or services.template_create(
        name=TEMPLATE,
        subject="Your appointment with {{ phi.primary_provider }}",
        html=footer.footer_insert(TEMPLATE_HTML),
        actor=actor,
    )
    portal_patient = _patient(PORTAL_PATIENT, "Marisol", "Demo-Portal", actor)
    pgp_patient = _patient(PGP_PATIENT, "Theo", "Demo-Pgp", actor)
    if not pgp_patient.encryption_keys.filter(revoked_at__isnull=True).exists():
        secret = pysequoia.Tsk.generate(f"Theo Demo-Pgp <{PGP_PATIENT}>")
        key_services.contact_key_upload(
            contact=pgp_patient,
            kind="pgp",
            data=str(secret.extract_certificate()),
            actor=actor,
            source="demo",
        )
        path = Path(settings.VAR_DIR) / "demo-pgp-secret-key.asc"
        path.write_text(str(secret))
        path.chmod(0o600)

    if not OrgSigningKey.objects.filter(kind="pgp").exists():
        # The organization signs what it encrypts: the PGP message below is signed too.
        signing = pysequoia.Tsk.generate(
            "Demo Health <care@demo-health.example>", profile=pysequoia.Profile.RFC4880
        )
        key = services.org_signing_key_set(kind="pgp", private_key=str(signing), actor=actor)
        (Path(settings.VAR_DIR) / "demo-org-signing-key.asc").write_text(key.public)

    queued: list[Message] = []
    if not PortalMessage.objects.filter(contact=portal_patient).exists():
        queued.append(
            transactional.message_send(
                contact=portal_patient,
                sender=sender,
                template=template,
                secure_policy="portal_only",
                actor=actor,
            )
        )
    if not Message.objects.filter(contact=pgp_patient, campaign__transactional=True).exists():
        queued.append(
            transactional.message_send(
                contact=pgp_patient, sender=sender, template=template, actor=actor
            )
        )
    if queued:
        _deliver(queued)
    portal_message = PortalMessage.objects.filter(contact=portal_patient).first()
    if (
        portal_message is not None
        and not PortalReply.objects.filter(portal_message=portal_message).exists()
    ):
        # The recipient's side of the demo: a verified session (as after a code) and a reply.
        now = timezone.now()
        session = PortalSession.objects.create(
            portal_message=portal_message,
            key_hash=portal_services.session_hash(f"demo-{portal_message.uuid}"),
            created_at=now,
            last_seen_at=now,
        )
        portal_services.portal_reply_create(
            portal_message=portal_message,
            session=session,
            body="Thank you! Could we move the appointment to the afternoon? Mornings are hard "
            "for me this month.",
        )
        portal_services.portal_session_end(session=session)


# Issue 18: a published sign-up form with confirmed and pending sign-ups.
demo.register(signup_demo.populate)
# Issue 20: a staff answer with an attachment in the portal conversation.
demo.register(conversation_demo.populate)
