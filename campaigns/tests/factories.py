"""Fast test data for the send pipeline: contacts with consent, templates, senders.

Contacts are written with ``bulk_create`` (encrypted with ``crypto.sealed`` like the
contacts app does), because the pipeline tests need thousands of them. Names are
Faker-style fakes; addresses use the reserved ``.test`` domain.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.utils import timezone

from campaigns import services
from campaigns.content import footer
from campaigns.models import ApprovalState, Campaign, CampaignApproval, SenderIdentity
from campaigns.services import approvals
from contacts.models import Consent, Contact, ContactList, ListMembership
from luxmail import crypto
from luxmail.actors import Actor

FIRST = ["Ana", "Ben", "Chloé", "Dev", "Eli", "Fatima", "Gus", "Hana"]


def make_contacts(
    n: int,
    *,
    prefix: str = "p",
    domain: str = "example.test",
    consent: tuple[str, ...] = ("marketing",),
    first_name: str | None = None,
    batch: int = 2000,
) -> list[int]:
    """Create ``n`` active contacts with the given consents; returns their ids."""
    ids: list[int] = []
    now = timezone.now()
    for start in range(0, n, batch):
        rows = []
        for i in range(start, min(start + batch, n)):
            row_uuid = uuid.uuid4()
            email = f"{prefix}{i}@{domain}"
            rows.append(
                Contact(
                    uuid=row_uuid,
                    email=crypto.sealed(Contact, "email", row_uuid, email),
                    email_bidx=crypto.blind_index("email", email),
                    domain=domain,
                    first_name=crypto.sealed(
                        Contact, "first_name", row_uuid, first_name or FIRST[i % len(FIRST)]
                    ),
                    last_name=crypto.sealed(Contact, "last_name", row_uuid, f"Test{i}"),
                )
            )
        created = Contact.objects.bulk_create(rows)
        ids.extend(c.pk for c in created)
        consents = [
            Consent(contact_id=c.pk, purpose=p, source="import", granted_at=now)
            for c in created
            for p in consent
        ]
        Consent.objects.bulk_create(consents)
    return ids


def make_list(name: str, contact_ids: list[int]) -> ContactList:
    contact_list = ContactList.objects.create(name=name)
    ListMembership.objects.bulk_create(
        [ListMembership(contact_list=contact_list, contact_id=i) for i in contact_ids],
        batch_size=5000,
    )
    return contact_list


HTML = (
    "<html><head><style>p { color: #123456; }</style></head><body>"
    "<p>Hello {{ contact.first_name }},</p>"
    '<p>Book your visit: <a href="https://clinic.example/book">book</a></p>'
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
    "</body></html>"
)


def make_sender(
    actor: Actor = None, *, algorithm: str = "rsa-sha256", **extra: Any
) -> SenderIdentity:
    return services.sender_create(
        name=extra.pop("name", f"Clinic {uuid.uuid4().hex[:6]}"),
        from_name="Springfield Clinic",
        from_email="news@clinic.example",
        actor=actor,
        dkim_algorithm=algorithm,
        **extra,
    )


def make_campaign(
    *,
    contact_ids: list[int],
    actor: Actor = None,
    html: str = HTML,
    subject: str = "Hello {{ contact.first_name }}",
    sender: SenderIdentity | None = None,
    approved: bool = True,
    locked_footer: bool = True,
    **fields: Any,
) -> Campaign:
    """A campaign to a new list; one that uses PHI comes approved unless ``approved``
    is False. Its template carries the organization's locked footer (marketing needs
    it) unless ``locked_footer`` is False."""
    template = services.template_create(
        name=f"T {uuid.uuid4().hex[:8]}",
        subject=subject,
        html=footer.footer_insert(html) if locked_footer else html,
        actor=actor,
    )
    audience = make_list(f"L {uuid.uuid4().hex[:8]}", contact_ids)
    campaign = services.campaign_create(
        name=f"C {uuid.uuid4().hex[:6]}",
        actor=actor,
        template=template,
        sender=sender or make_sender(actor),
        lists=[audience],
        **fields,
    )
    if approved:
        approve_for_test(campaign)
    return campaign


def approve_for_test(campaign: Campaign) -> CampaignApproval | None:
    """Record a Compliance Officer approval of the campaign as it is now, when it uses PHI.

    A shortcut for tests about sending; tests of the approval itself go through
    ``campaigns/services/approvals.py`` (campaigns/tests/test_approvals.py).
    """
    campaign = Campaign.objects.select_related("template", "sender").get(pk=campaign.pk)
    if not approvals.phi_use(campaign).needs_approval:
        return None
    return CampaignApproval.objects.create(
        campaign=campaign,
        state=ApprovalState.APPROVED,
        inputs_hash=approvals.inputs_hash(campaign),
        secure_policy=campaign.secure_policy,
        decided_at=timezone.now(),
    )
