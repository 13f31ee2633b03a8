"""Test data for sign-up forms: a published authorization and a published form."""

from __future__ import annotations

import re
import uuid

from contacts.models import CORE_ELEMENTS, ContactList, SignupForm
from contacts.services import authorizations
from luxmail.actors import Actor

AUTHORIZATION_TEXT = (
    "I authorize Springfield Clinic to use my name, date of birth and conditions to send me "
    "health tips by email. The clinic discloses it only to its mailing processor. It expires "
    "two years after signing. I may revoke it at any time in the preference center or in "
    "writing. Treatment does not depend on signing. The clinic receives no payment for it. "
    "Information disclosed may be redisclosed and no longer protected."
)


def make_form(actor: Actor, *, slug: str | None = None, phi: bool = True) -> SignupForm:
    auth = authorizations.authorization_save(
        name=f"Marketing authorization {uuid.uuid4().hex[:6]}",
        text=AUTHORIZATION_TEXT,
        checklist=dict.fromkeys(CORE_ELEMENTS, True),
        expires_after_days=730,
        actor=actor,
    )
    authorizations.authorization_publish(version=auth, actor=actor)
    topic = ContactList.objects.create(name=f"Diabetes tips {uuid.uuid4().hex[:4]}")
    form = SignupForm.objects.create(
        slug=slug or f"join-{uuid.uuid4().hex[:6]}",
        name="Newsletter",
        title="Join our health newsletter",
        fields=[
            "first_name",
            "last_name",
            "birth_date",
            "conditions",
            "primary_provider",
            "next_appointment",
        ],
        required_fields=["first_name"],
        request_phi_marketing=phi,
        authorization=auth if phi else None,
    )
    form.lists.add(topic)
    authorizations.form_publish(form=form, actor=actor)
    return form


def confirm_path(data: bytes) -> str:
    text = data.decode("utf-8", "replace").replace("=\r\n", "").replace("=\n", "")
    match = re.search(r"https?://[^/\s]+(/f/confirm/[a-z0-9]+/)", text)
    assert match, "no confirmation link in the mail"
    return match.group(1)
