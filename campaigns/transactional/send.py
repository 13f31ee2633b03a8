"""One message to one contact, sent now: the path EHR/CRM integrations use for
appointment reminders (``POST /api/v1/messages/``, issue 5 item 5).

A transactional message is a *campaign of one* (``Campaign.transactional``), so it
goes through exactly the same pipeline as a campaign: frozen template, per-recipient
channel choice (S/MIME ▸ PGP ▸ enforced TLS ▸ portal), DKIM, the queue's
claim/lease/outcome bookkeeping and retries. Only its id travels to the worker.
Transactional messages need the contact's ``transactional`` consent (not a marketing
one) and are refused for suppressed or inactive contacts.
"""

from __future__ import annotations

import uuid

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from campaigns import services, tasks
from campaigns.content import templating
from campaigns.models import Campaign, CampaignStatus, EmailTemplate, Message, SenderIdentity
from campaigns.secure.errors import PolicyError
from campaigns.secure.policy import check_policy_allowed
from campaigns.services import CampaignError
from contacts.models import Contact, ContactStatus
from contacts.selectors import consent_present, is_suppressed
from luxmail import audit, org
from luxmail.actors import Actor
from luxmail.models import SecurePolicy

CONSENT_PURPOSE = "transactional"


def message_send(
    *,
    contact: Contact,
    sender: SenderIdentity,
    actor: Actor,
    template: EmailTemplate | None = None,
    subject: str = "",
    html: str = "",
    text: str = "",
    secure_policy: str = "",
    track_opens: bool = False,
    track_clicks: bool = False,
    encrypted_subject_visible: bool = False,
    request: HttpRequest | None = None,
) -> Message:
    """Queue one message to ``contact`` and return it (state ``queued``).

    Content is a stored ``template`` or raw ``subject``/``html`` (+ optional ``text``),
    validated like a template (sandbox, size limits). The secure policy defaults to the
    organization's; ``opportunistic`` is refused for content that uses PHI. The send
    is enqueued by campaign id on commit. Audits ``message.send`` (ids, policy, whether
    PHI-bearing). Raises :class:`CampaignError` (user-facing) or
    ``templating.TemplateError`` for content problems.
    """

    if template is not None and (subject or html or text):
        raise CampaignError("Give either a template or subject and html, not both.")
    if template is None:
        if not subject.strip() or not html.strip():
            raise CampaignError("A message needs a template, or a subject and html.")
        checked = templating.validate(subject=subject, html=html, text=text)
        phi_bearing = checked.phi_bearing
    else:
        subject, html, text = template.subject, template.html, template.text
        phi_bearing = template.phi_bearing
    policy = secure_policy or org.get_settings().default_secure_policy
    try:
        check_policy_allowed(policy, phi_bearing=phi_bearing)
    except PolicyError as error:
        raise CampaignError(str(error)) from None
    if not sender.has_dkim and not sender.allow_without_dkim:
        raise CampaignError(
            f"Sender identity '{sender.name}' has no DKIM key. Generate one, or ask an Admin "
            "to allow sending without DKIM."
        )
    if contact.status != ContactStatus.ACTIVE:
        raise CampaignError(f"The contact is {contact.get_status_display().lower()}.")
    if is_suppressed(contact=contact):
        raise CampaignError("The contact's address is suppressed (bounce, complaint or manual).")
    if not consent_present(contact=contact, purpose=CONSENT_PURPOSE):
        raise CampaignError(
            "The contact has no present 'transactional' consent. Record it first "
            "(POST /api/v1/contacts/{id}/consents/)."
        )
    sources = services._with_footer(subject=subject, html=html, text=text)
    now = timezone.now()
    with transaction.atomic():
        campaign = Campaign.objects.create(
            name=f"API message {uuid.uuid4().hex[:12]}",
            transactional=True,
            template=template,
            sender=sender,
            secure_policy=SecurePolicy(policy),
            encrypted_subject_visible=encrypted_subject_visible,
            track_opens=track_opens,
            track_clicks=track_clicks,
            status=CampaignStatus.SENDING,
            frozen_subject=sources["subject"],
            frozen_html=sources["html"],
            frozen_text=sources["text"],
            frozen_phi_bearing=phi_bearing,
            recipients=1,
            started_at=now,
            last_batch_at=now,
            created_by=services._user(actor),
        )
        message = Message.objects.create(campaign=campaign, contact=contact)
        audit.record(
            "message.send",
            actor=actor,
            request=request,
            target=campaign,
            details={
                "message_id": message.pk,
                "contact_id": contact.pk,
                "template_id": template.pk if template is not None else None,
                "policy": policy,
                "phi_bearing": phi_bearing,
            },
        )
        campaign_id = campaign.pk
        transaction.on_commit(lambda: _enqueue(campaign_id))
    return message


def _enqueue(campaign_id: int) -> None:

    tasks.send_batch.delay(campaign_id)
