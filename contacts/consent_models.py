"""Consent capture (issue 18): hosted sign-up forms, their pending submissions, versioned
HIPAA marketing authorizations, the per-contact consent ledger and recipient preferences.

Imported by ``contacts/models.py`` so Django registers them in the ``contacts`` app.
Writes: ``contacts/services/signup.py`` and ``contacts/services/authorizations.py``;
reads: ``contacts/signup_selectors.py``. Forms and pages are rendered by ``portal/``
(the patient-facing layer).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from luxmail.crypto import EncryptedField

# The core elements of 45 CFR 164.508(c)(1)-(2): every one must be addressed (checked by
# the organization) before an authorization version can be published.
CORE_ELEMENTS: dict[str, str] = {
    "information": "A specific description of the information to be used or disclosed",
    "discloser": "Who is authorized to use or disclose it",
    "recipient": "To whom it may be disclosed",
    "purpose": "The purpose of each use or disclosure (marketing)",
    "expiration": "An expiration date or event",
    "revocation": "The right to revoke in writing, and how",
    "signature": "Signature of the individual and date",
    "conditioning": "A statement that treatment is not conditioned on signing",
    "redisclosure": "That disclosed information may be redisclosed and no longer protected",
    "remuneration": "Remuneration disclosure, where the marketing involves it (or N/A)",
}


class AuthorizationVersion(models.Model):
    """One version of the organization's PHI-marketing authorization text.

    ``checklist`` maps every key of :data:`CORE_ELEMENTS` to ``True`` once the text
    addresses it. A version is editable while a draft; publishing needs the full
    checklist; once a form uses it or a patient signs it, it never changes again
    (``used_at``) — a change is a new version.
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200, help_text="Groups the versions of one document.")
    number = models.PositiveIntegerField()
    text = models.TextField(help_text="The authorization the patient reads and signs.")
    expires_after_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Expiration of each grant (blank: the event in the text)."
    )
    checklist = models.JSONField(default=dict, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    used_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["name", "number"], name="authorization_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.number}"


class SignupSettings(models.Model):
    """Organization-wide settings of sign-up forms and the preference center (one row)."""

    frame_ancestors = models.TextField(
        blank=True,
        help_text="Origins allowed to embed forms, one per line (https://www.hospital.example).",
    )
    preferences_intro = models.TextField(
        blank=True, help_text="Text shown at the top of the preference center."
    )
    preferences_footer = models.TextField(blank=True)
    languages = models.JSONField(
        default=list, blank=True, help_text="Languages offered: [[code, label], ...]."
    )

    def __str__(self) -> str:
        return "Sign-up settings"


class SignupForm(models.Model):
    """A hosted sign-up form, served at ``/f/<slug>/`` and embeddable by iframe.

    ``fields`` lists contact attribute keys (``first_name``, ``birth_date``,
    ``custom.<key>``...); ``email`` is always asked. A form that asks for PHI marketing
    must point at a published :class:`AuthorizationVersion`.
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=200)
    title = models.CharField(max_length=200)
    intro = models.TextField(blank=True)
    fields = models.JSONField(default=list, blank=True)
    required_fields = models.JSONField(default=list, blank=True)
    lists = models.ManyToManyField("contacts.ContactList", blank=True, related_name="+")
    marketing_text = models.CharField(
        max_length=300, default="Send me news and health tips by email."
    )
    request_phi_marketing = models.BooleanField(default=False)
    authorization = models.ForeignKey(
        AuthorizationVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="forms"
    )
    brand_color = models.CharField(max_length=7, default="#0b5394")
    thank_you_text = models.TextField(
        default="Thank you. Check your inbox: we sent you a link to confirm your sign-up."
    )
    confirmed_text = models.TextField(default="Your sign-up is confirmed. Thank you.")
    published = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SubmissionStatus(models.TextChoices):
    PENDING = "pending", "Waiting for confirmation"
    CONFIRMED = "confirmed", "Confirmed"


class SignupSubmission(models.Model):
    """A sign-up waiting for its double opt-in; becomes (or updates) a contact on confirm.

    Everything the patient typed — and the IP and user agent kept as evidence — is in
    ``phi_payload``, encrypted. ``email_bidx`` counts confirmation mails per address without
    holding the address. Unconfirmed rows are purged after ``expires_at``.
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=12, default="signup", help_text="signup or resubscribe")
    form = models.ForeignKey(
        SignupForm, null=True, blank=True, on_delete=models.CASCADE, related_name="submissions"
    )
    email_bidx = models.BinaryField(max_length=32, editable=False)
    phi_payload = EncryptedField(kind="json")
    status = models.CharField(
        max_length=12, choices=SubmissionStatus.choices, default=SubmissionStatus.PENDING
    )
    contact = models.ForeignKey(
        "contacts.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["email_bidx"], name="contacts_signup_bidx")]

    def __str__(self) -> str:
        return f"Sign-up #{self.pk} ({self.status})"


class LedgerKind(models.TextChoices):
    GRANT = "grant", "Consent granted"
    CONFIRMATION = "confirmation", "Sign-up confirmed"
    REVOCATION = "revocation", "Consent revoked"
    UNSUBSCRIBE = "unsubscribe", "Unsubscribed"
    RESUBSCRIBE = "resubscribe", "Resubscribed"
    PREFERENCES = "preferences", "Preferences changed"


class ConsentLedgerEntry(models.Model):
    """One consent event of a contact with its evidence (append-only).

    Queried by ``contact_id``; ``phi_evidence`` (IP, user agent, typed signature, staff
    note) is encrypted because an IP address and a name are identifiers.
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    contact = models.ForeignKey(
        "contacts.Contact", on_delete=models.CASCADE, related_name="consent_ledger"
    )
    kind = models.CharField(max_length=16, choices=LedgerKind.choices)
    purpose = models.CharField(max_length=16, blank=True)
    consent = models.ForeignKey(
        "contacts.Consent", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    authorization = models.ForeignKey(
        AuthorizationVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    form = models.ForeignKey(
        SignupForm, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor = models.CharField(max_length=100, help_text="Who: a staff user or 'recipient'.")
    source = models.CharField(max_length=32, blank=True)
    phi_evidence = EncryptedField(kind="json")
    occurred_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["contact", "occurred_at"], name="contacts_ledger_contact")]

    def __str__(self) -> str:
        return f"{self.kind} of contact #{self.contact_id}"


class Frequency(models.TextChoices):
    ALL = "all", "Every message"
    MONTHLY = "monthly", "Monthly digest only"


class ChannelPreference(models.TextChoices):
    EMAIL = "email", "Email"
    PORTAL = "portal", "Secure portal"


class ContactPreference(models.Model):
    """What a recipient chose in the preference center (not PHI: choices from short lists).

    ``paused_until`` stops marketing at send time (``campaigns/sending/queue.py``).
    """

    contact = models.OneToOneField(
        "contacts.Contact", on_delete=models.CASCADE, primary_key=True, related_name="preference"
    )
    frequency = models.CharField(max_length=8, choices=Frequency.choices, default=Frequency.ALL)
    channel = models.CharField(
        max_length=8, choices=ChannelPreference.choices, default=ChannelPreference.EMAIL
    )
    language = models.CharField(max_length=8, blank=True)
    paused_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"preferences of contact #{self.pk}"
