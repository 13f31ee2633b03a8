"""Contacts, their encrypted PHI profile, blind-index tokens, consent, suppression,
static lists, segments and custom-field definitions (DESIGN.md §4, docs/architecture.md).

Models hold fields and constraints only: writes live in ``contacts/services.py``, reads
in ``contacts/selectors.py``, the segment compiler in ``contacts/segments.py`` and the
token derivation in ``contacts/tokens.py``.

Every PHI value is an :class:`~luxmail.crypto.EncryptedField`; the columns the database
can search hold blind-index tokens (``ContactTokenSet``) or non-PHI plain values (status,
recipient domain, external id).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Lookup

from luxmail.crypto import EncryptedField


class ContactStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
    BOUNCED = "bounced", "Bounced"
    COMPLAINED = "complained", "Complained"


class Contact(models.Model):
    """A recipient. Identity is the email's blind index; PHI lives in :class:`ContactProfile`.

    ``external_id`` is the id of the person in the organization's EHR/CRM, stored in
    plaintext so integrations can upsert by it: it must be an opaque system id, never a
    medical record number or an SSN (docs/security.md).
    """

    id = models.BigAutoField(primary_key=True)
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    email = EncryptedField(kind="text")
    email_bidx = models.BinaryField(max_length=32, unique=True, editable=False)
    domain = models.CharField(
        max_length=253, db_index=True, help_text="Recipient domain, lowercased (not PHI)."
    )
    first_name = EncryptedField(kind="text")
    last_name = EncryptedField(kind="text")
    phone = EncryptedField(kind="text")
    external_id = models.CharField(
        max_length=100,
        null=True,
        blank=True,
        unique=True,
        help_text="Opaque EHR/CRM id. Never a medical record number or an SSN.",
    )
    status = models.CharField(
        max_length=16, choices=ContactStatus.choices, default=ContactStatus.ACTIVE
    )
    status_changed_at = models.DateTimeField(null=True, blank=True)
    time_zone = models.CharField(
        max_length=64, blank=True, help_text="IANA time zone name, e.g. America/New_York."
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        # Never PHI: the admin, logs and error pages may print this.
        return f"Contact #{self.pk}"


class JourneyStage(models.TextChoices):
    NEW = "new", "New"
    ACTIVE = "active", "Active"
    OVERDUE = "overdue", "Overdue"
    AT_RISK = "at_risk", "At risk"


class Sex(models.TextChoices):
    FEMALE = "female", "Female"
    MALE = "male", "Male"
    OTHER = "other", "Other"
    UNKNOWN = "unknown", "Unknown"


class InsuranceType(models.TextChoices):
    COMMERCIAL = "commercial", "Commercial"
    MEDICARE = "medicare", "Medicare"
    MEDICAID = "medicaid", "Medicaid"
    TRICARE = "tricare", "TRICARE"
    SELF_PAY = "self_pay", "Self-pay"
    OTHER = "other", "Other"


class ContactProfile(models.Model):
    """The PHI of one contact, every attribute encrypted on its own.

    One-to-one with :class:`Contact` (same primary key) so the contact table stays narrow
    for audience queries; the tokens in :class:`ContactTokenSet` are rewritten from this
    profile in the same transaction as every change.
    """

    contact = models.OneToOneField(
        Contact, on_delete=models.CASCADE, primary_key=True, related_name="profile"
    )
    # Bound into the encryption associated data (equal to the contact's UUID).
    uuid = models.UUIDField(editable=False)
    birth_date = EncryptedField(kind="date")
    sex = EncryptedField(kind="text")
    language = EncryptedField(kind="text")
    zip_code = EncryptedField(kind="text")
    conditions = EncryptedField(kind="json")
    medications = EncryptedField(kind="json")
    insurance_type = EncryptedField(kind="text")
    insurance_plan = EncryptedField(kind="text")
    primary_provider = EncryptedField(kind="text")
    last_visit = EncryptedField(kind="date")
    next_appointment = EncryptedField(kind="date")
    journey_stage = EncryptedField(kind="text")
    custom_phi = EncryptedField(kind="json")
    custom = models.JSONField(
        default=dict, blank=True, help_text="Values of custom fields not marked PHI."
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Profile of contact #{self.pk}"


class TokenArrayField(models.Field):
    """A set of signed 64-bit tokens: ``bigint[]`` on PostgreSQL, a JSON list elsewhere.

    Filter with the ``overlaps`` lookup (``tokens__overlaps=[...]``: at least one token
    in common), which PostgreSQL answers from a GIN index.
    """

    description = "Set of 64-bit blind-index tokens"

    def db_type(self, connection: Any) -> str:
        return "bigint[]" if connection.vendor == "postgresql" else "text"

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> list[int]:
        if value is None:
            return []
        if isinstance(value, str):
            return [int(item) for item in json.loads(value)]
        return [int(item) for item in value]

    def to_python(self, value: Any) -> list[int]:
        if value is None:
            return []
        if isinstance(value, str):
            value = json.loads(value)
        return [int(item) for item in value]

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if value is None:
            return None
        items = sorted({int(item) for item in value})
        return items if connection.vendor == "postgresql" else json.dumps(items)


@TokenArrayField.register_lookup
class TokensOverlap(Lookup):
    lookup_name = "overlaps"
    prepare_rhs = False

    def get_prep_lookup(self) -> list[int]:
        return sorted({int(item) for item in self.rhs})

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = list(self.rhs)
        if not values:
            return "1 = 0", []
        marks = ", ".join(["%s"] * len(values))
        # Only placeholders are interpolated; the values travel as parameters.
        sql = f"EXISTS (SELECT 1 FROM json_each({lhs}) WHERE json_each.value IN ({marks}))"  # noqa: S608
        return sql, [*lhs_params, *values]

    def as_postgresql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} && %s::bigint[]", [*lhs_params, list(self.rhs)]


class ContactTokenSet(models.Model):
    """The blind-index tokens of one contact's segmentable attributes, as one array.

    ``token = crypto.blind_token(<field>, <normalized value>)``: the field name is part
    of the key derivation, so tokens of different fields never collide. One row per
    contact with a GIN index on PostgreSQL (migration 0002): a segment's conditions
    become ``tokens && ARRAY[...]`` tests on the same row, which PostgreSQL combines in
    one bitmap index scan (docs/architecture.md, Decisions). Rewritten in the same
    transaction as every profile change.
    """

    contact = models.OneToOneField(
        Contact, on_delete=models.CASCADE, primary_key=True, related_name="tokenset"
    )
    tokens = TokenArrayField(default=list)

    def __str__(self) -> str:
        return f"tokens of contact #{self.pk}"


class TokenIndexState(models.Model):
    """The token layout every contact's token set is written in (one row, pk 1).

    ``version`` is ``contacts.tokens.TOKEN_VERSION`` of the code that last tokenized
    every contact: migration 0009 records 1 where contacts existed before the coarse
    date levels (decade, century) and the current version on an empty database;
    ``manage.py contacts_reindex`` sets it once every token set is rewritten. Segments
    use the coarse levels only when it is current (docs/operations.md, Upgrades).
    """

    version = models.PositiveSmallIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(pk=1), name="tokenindexstate_singleton")
        ]

    def __str__(self) -> str:
        return f"contact tokens, layout {self.version}"


class CustomFieldKind(models.TextChoices):
    TEXT = "text", "Text"
    NUMBER = "number", "Number"
    DATE = "date", "Date"
    CHOICE = "choice", "Choice"


class CustomField(models.Model):
    """An Admin-defined contact attribute. PHI values are encrypted, others stored plain.

    Tokens of a custom field are derived under ``custom:<uuid>``, so a field deleted and
    re-created with the same key never matches the old field's tokens.
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    key = models.SlugField(max_length=50, unique=True, help_text="Used in segments and imports.")
    label = models.CharField(max_length=100)
    kind = models.CharField(max_length=8, choices=CustomFieldKind.choices)
    choices = models.JSONField(default=list, blank=True, help_text="Allowed values (choice).")
    phi = models.BooleanField(
        default=True, help_text="PHI values are encrypted and shown only to PHI roles."
    )
    help_text = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.label


class ConsentPurpose(models.TextChoices):
    MARKETING = "marketing", "Marketing"
    PHI_MARKETING = "phi_marketing", "PHI marketing authorization (45 CFR 164.508(a)(3))"
    TRANSACTIONAL = "transactional", "Transactional"


class ConsentSource(models.TextChoices):
    WEB_FORM = "web_form", "Web form"
    PAPER = "paper", "Signed paper form"
    VERBAL = "verbal", "Verbal (recorded)"
    EHR = "ehr", "EHR / patient portal"
    IMPORT = "import", "Import"
    API = "api", "API"
    STAFF = "staff", "Entered by staff"


class Consent(models.Model):
    """One grant of consent for one purpose. Never updated except to record revocation.

    A consent is *present* while ``granted_at <= now``, it is not revoked and not
    expired. Revoking stamps ``revoked_at``/``revoked_by`` on the row; granting again
    adds a new row, so the history is complete.
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="consents")
    purpose = models.CharField(max_length=16, choices=ConsentPurpose.choices)
    source = models.CharField(max_length=16, choices=ConsentSource.choices)
    evidence_ref = models.CharField(
        max_length=200,
        blank=True,
        help_text="Where the evidence is kept (form id, document id). No PHI.",
    )
    granted_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revocation_source = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["-granted_at", "-id"]
        indexes = [models.Index(fields=["contact", "purpose"], name="contacts_consent_lookup")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(expires_at__isnull=True)
                | models.Q(expires_at__gt=models.F("granted_at")),
                name="consent_expires_after_grant",
            )
        ]

    def __str__(self) -> str:
        return f"{self.purpose} consent of contact #{self.contact_id}"


class SuppressionReason(models.TextChoices):
    UNSUBSCRIBE = "unsubscribe", "Unsubscribed"
    HARD_BOUNCE = "hard_bounce", "Hard bounce"
    COMPLAINT = "complaint", "Spam complaint"
    MANUAL = "manual", "Manual"


class Suppression(models.Model):
    """An address that must not receive mail, keyed by the email's blind index.

    Keyed by address, not contact, so it outlives the contact and applies to a contact
    re-created later. Removal stamps ``removed_at`` (history kept); at most one active
    suppression per address.
    """

    email_bidx = models.BinaryField(max_length=32, editable=False)
    reason = models.CharField(max_length=16, choices=SuppressionReason.choices)
    note = models.CharField(max_length=500, blank=True, help_text="Why (no PHI).")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    removed_at = models.DateTimeField(null=True, blank=True)
    removed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    removal_note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["email_bidx"], name="contacts_suppression_bidx")]
        constraints = [
            models.UniqueConstraint(
                fields=["email_bidx"],
                condition=models.Q(removed_at__isnull=True),
                name="suppression_one_active_per_address",
            )
        ]

    def __str__(self) -> str:
        return f"Suppression #{self.pk} ({self.reason})"


class ContactList(models.Model):
    """A static list of contacts (a membership table, not a rule)."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ListMembership(models.Model):
    contact_list = models.ForeignKey(
        ContactList, on_delete=models.CASCADE, related_name="memberships"
    )
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="memberships")
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["contact"], name="contacts_membership_contact")]
        constraints = [
            models.UniqueConstraint(
                fields=["contact_list", "contact"], name="list_membership_unique"
            )
        ]

    def __str__(self) -> str:
        return f"contact #{self.contact_id} in list #{self.contact_list_id}"


class Segment(models.Model):
    """A stored rule tree (``contacts/segments.py``) evaluated as one SQL query."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    rules = models.JSONField(help_text="Rule tree: nested all/any/not groups of conditions.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_count = models.PositiveIntegerField(null=True, blank=True)
    last_counted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ImportJobStatus(models.TextChoices):
    READING = "reading", "Reading the file"
    UPLOADED = "uploaded", "Uploaded"
    PREVIEWING = "previewing", "Checking"
    PREVIEWED = "previewed", "Checked"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class ImportJob(models.Model):
    """One contact import: the uploaded file, its column mapping, preview and outcome.

    The uploaded file lives under ``var/media/imports/`` (``file_path`` is relative to
    that directory) until the import finishes, fails or is cancelled; then it is
    deleted. Celery tasks receive only the job id. ``errors`` lists row numbers, column
    names and error codes with a readable reason — never a cell value, so no PHI.
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    status = models.CharField(
        max_length=16, choices=ImportJobStatus.choices, default=ImportJobStatus.READING
    )
    original_name = models.CharField(max_length=255, blank=True)
    file_format = models.CharField(max_length=8)
    file_path = models.CharField(max_length=255, blank=True)
    headers = models.JSONField(default=list, blank=True)
    mapping = models.JSONField(default=dict, blank=True, help_text="Column header -> field key.")
    options = models.JSONField(default=dict, blank=True)
    contact_list = models.ForeignKey(
        ContactList, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    includes_phi = models.BooleanField(default=False)
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    unchanged_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    preview = models.JSONField(default=dict, blank=True, help_text="Dry-run counts.")
    details = models.JSONField(default=dict, blank=True, help_text="Run counts (consents, list).")
    failure = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Import #{self.pk} ({self.status})"


class EncryptionKeyKind(models.TextChoices):
    SMIME = "smime", "S/MIME certificate"
    PGP = "pgp", "OpenPGP public key"


class ContactEncryptionKey(models.Model):
    """A contact's S/MIME certificate or OpenPGP public key (issue 5, secure channels).

    The material names the person (user id / certificate subject), so it is encrypted
    like any PHI. ``fingerprint`` (SHA-256 of the certificate, or the OpenPGP
    fingerprint) and the validity dates are not PHI and stay searchable. At most one
    active (not revoked) key per contact and kind; an upload replaces the previous one
    (which keeps its row, revoked, for the record). Writes: ``contacts/keys/services.py``.
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="encryption_keys")
    kind = models.CharField(max_length=8, choices=EncryptionKeyKind.choices)
    material = EncryptedField(kind="text")
    fingerprint = models.CharField(max_length=64)
    serial_number = models.CharField(max_length=64, blank=True, help_text="S/MIME only.")
    algorithm = models.CharField(max_length=64, blank=True)
    not_after = models.DateTimeField(null=True, blank=True)
    validated_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=16, blank=True, help_text="replaced or removed")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["contact", "kind"],
                condition=models.Q(revoked_at__isnull=True),
                name="contact_one_active_key_per_kind",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.fingerprint[:16]} of contact #{self.contact_id}"


# Consent capture (issue 18) lives in its own module to keep this one readable; imported
# here so Django registers the models in this app.
from contacts.browse_models import (  # noqa: E402
    BulkAction,
    BulkJob,
    BulkJobStatus,
    ContactTag,
    SavedView,
    Tag,
)
from contacts.consent_models import (  # noqa: E402
    CORE_ELEMENTS,
    AuthorizationVersion,
    ChannelPreference,
    ConsentLedgerEntry,
    ContactPreference,
    Frequency,
    LedgerKind,
    SignupForm,
    SignupSettings,
    SignupSubmission,
    SubmissionStatus,
)

__all__ = [
    "CORE_ELEMENTS",
    "AuthorizationVersion",
    "BulkAction",
    "BulkJob",
    "BulkJobStatus",
    "ChannelPreference",
    "ConsentLedgerEntry",
    "ContactPreference",
    "ContactTag",
    "Frequency",
    "LedgerKind",
    "SavedView",
    "SignupForm",
    "SignupSettings",
    "SignupSubmission",
    "SubmissionStatus",
    "Tag",
]
