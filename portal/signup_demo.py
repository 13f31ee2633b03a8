"""Demo data for ``make run`` (issue 18): a published sign-up form at ``/f/newsletter/``
with a published PHI-marketing authorization, two confirmed sign-ups (contacts with
consents and ledger entries) and two still waiting for confirmation. Idempotent.
Registered by ``portal/demo.py``."""

from __future__ import annotations

from contacts.models import (
    CORE_ELEMENTS,
    AuthorizationVersion,
    ContactList,
    SignupForm,
    SignupSettings,
)
from contacts.services import authorizations, signup
from luxmail.actors import Actor

SLUG = "newsletter"
AUTHORIZATION = """I authorize Demo Health to use my name, date of birth, conditions and \
appointment dates to send me health tips and reminders by email that are tailored to me.

Demo Health discloses this information only to LuxMail, the service that sends these \
emails on its behalf. This authorization expires two years after I sign it. I may revoke \
it at any time, in writing or from the preference center linked in every email; \
revocation does not affect what was already done relying on it.

My treatment, payment, enrollment or eligibility for benefits does not depend on \
whether I sign. Demo Health receives no payment from a third party for these messages. \
Information disclosed under this authorization may be redisclosed by the recipient and \
no longer be protected by federal privacy rules. I sign by typing my full name below."""

PEOPLE = [
    ("ada.pennington@demo-health.example", "Ada", "Pennington", "1958-07-21", "E11.9", True),
    ("bram.okafor@demo-health.example", "Bram", "Okafor", "1983-01-04", "I10", True),
    ("celia.marsh@demo-health.example", "Celia", "Marsh", "1991-11-30", "J45.909", False),
    ("dov.halloran@demo-health.example", "Dov", "Halloran", "1966-03-12", "E78.5", False),
]


def _no_mail(submission_id: int) -> None:
    # Demo sign-ups are created directly: their confirmation mails are not sent.
    return None


def populate(*, actor: Actor) -> None:
    if SignupForm.objects.filter(slug=SLUG).exists():
        return
    auth = AuthorizationVersion.objects.filter(name="Marketing authorization").first()
    if auth is None:
        auth = authorizations.authorization_save(
            name="Marketing authorization",
            text=AUTHORIZATION,
            checklist=dict.fromkeys(CORE_ELEMENTS, True),
            expires_after_days=730,
            actor=actor,
        )
        authorizations.authorization_publish(version=auth, actor=actor)
    topic, _ = ContactList.objects.get_or_create(
        name="Diabetes care tips", defaults={"description": "Offered on the sign-up form."}
    )
    if not SignupSettings.objects.exists():
        SignupSettings.objects.create(
            frame_ancestors="https://www.demo-health.example",
            preferences_intro="Choose what Demo Health sends you. Changes apply at once.",
            languages=[["en", "English"], ["es", "Español"]],
        )
    form = SignupForm.objects.create(
        slug=SLUG,
        name="Health newsletter",
        title="Get health tips from Demo Health",
        intro="Sign up for tips and reminders. We will email you a link to confirm.",
        fields=["first_name", "last_name", "birth_date", "conditions"],
        required_fields=["first_name"],
        request_phi_marketing=True,
        authorization=auth,
    )
    form.lists.add(topic)
    authorizations.form_publish(form=form, actor=actor)
    for index, (email, first, last, birth, condition, confirm) in enumerate(PEOPLE):
        submission = signup.submission_create(
            form=form,
            data={
                "email": email,
                "first_name": first,
                "last_name": last,
                "birth_date": birth,
                "conditions": condition,
            },
            marketing=True,
            phi_marketing=True,
            authorization_accepted=True,
            signature=f"{first} {last}",
            list_ids=[topic.pk],
            ip=f"192.0.2.{10 + index}",
            user_agent="Mozilla/5.0 (demo)",
            notify=_no_mail,
        )
        if submission is not None and confirm:
            signup.submission_confirm(
                submission_id=submission.pk, ip=f"192.0.2.{10 + index}", user_agent="demo"
            )
