"""The recipients' secure-message portal: messages waiting to be read, one-time codes,
portal sessions and secure replies (issue 5; docs/architecture.md "Secure channels and
the portal").

Models hold fields and constraints only; the logic lives in ``portal/services.py``
(writes) and ``portal/selectors.py`` (reads). Every content column is an
:class:`~luxmail.crypto.EncryptedField`; codes, link tokens and session keys are kept
only as keyed hashes.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from luxmail.crypto import EncryptedField


class PortalMessage(models.Model):
    """One message that waits in the portal instead of travelling by e-mail.

    The recipient opens it with the link of the notice (an opaque token whose SHA-256
    is ``link_hash``), proves control of the address with a one-time code (and, when the
    organization asks, the date of birth), and reads it in a portal session.
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    message = models.OneToOneField(
        "campaigns.Message",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="portal_message",
        db_constraint=False,  # messages are partitioned (luxmail/partitions.py)
    )
    campaign = models.ForeignKey(
        "campaigns.Campaign", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    contact = models.ForeignKey(
        "contacts.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sender = models.ForeignKey(
        "campaigns.SenderIdentity",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    recipient_email = EncryptedField(kind="text")
    subject = EncryptedField(kind="text")
    html = EncryptedField(kind="text")
    text = EncryptedField(kind="text")
    link_hash = models.BinaryField(max_length=32, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    locked_at = models.DateTimeField(null=True, blank=True)
    failed_attempts = models.PositiveSmallIntegerField(default=0)
    first_read_at = models.DateTimeField(null=True, blank=True)
    last_read_at = models.DateTimeField(null=True, blank=True)
    read_count = models.PositiveIntegerField(default=0)
    # The conversation around the message (staff inbox, portal/services/conversations.py).
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    done_at = models.DateTimeField(null=True, blank=True)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["campaign", "created_at"], name="portal_msg_campaign"),
            models.Index(fields=["contact", "created_at"], name="portal_msg_contact"),
        ]

    def __str__(self) -> str:
        return f"Portal message #{self.pk}"


class PortalCode(models.Model):
    """A 6-digit one-time code e-mailed to the recipient (stored as a keyed hash)."""

    portal_message = models.ForeignKey(
        PortalMessage, on_delete=models.CASCADE, related_name="codes"
    )
    code_hash = models.BinaryField(max_length=32)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    superseded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["portal_message", "created_at"], name="portal_code_msg")]

    def __str__(self) -> str:
        return f"Portal code #{self.pk}"


class PortalSession(models.Model):
    """A verified recipient's session for one portal message (not a staff session).

    The browser holds a random key in a cookie scoped to the message's path; only its
    keyed hash is stored. Idle sessions end after ``LUXMAIL_PORTAL_IDLE_SECONDS``.
    """

    portal_message = models.ForeignKey(
        PortalMessage, on_delete=models.CASCADE, related_name="sessions"
    )
    key_hash = models.BinaryField(max_length=32, unique=True)
    created_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Portal session #{self.pk}"


class PortalReply(models.Model):
    """A secure reply from the recipient; the body is encrypted, staff read it audited."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    portal_message = models.ForeignKey(
        PortalMessage, on_delete=models.CASCADE, related_name="replies"
    )
    body = EncryptedField(kind="text")
    created_at = models.DateTimeField(auto_now_add=True)
    staff_read_at = models.DateTimeField(null=True, blank=True)
    staff_read_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Portal reply #{self.pk}"


class PortalStaffReply(models.Model):
    """A staff answer in the portal; the recipient reads it there (body encrypted)."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    portal_message = models.ForeignKey(
        PortalMessage, on_delete=models.CASCADE, related_name="staff_replies"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    body = EncryptedField(kind="text")
    created_at = models.DateTimeField(auto_now_add=True)
    recipient_read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"Staff reply #{self.pk}"


class AttachmentScan(models.TextChoices):
    CLEAN = "clean", "Scanned by ClamAV: no virus found"
    UNSCANNED = "unscanned", "Not scanned: ClamAV was not reachable"


class PortalAttachment(models.Model):
    """A file attached to a staff reply: name and content encrypted, type from its bytes."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    staff_reply = models.ForeignKey(
        PortalStaffReply, on_delete=models.CASCADE, related_name="attachments"
    )
    filename = EncryptedField(kind="text")
    content = EncryptedField(kind="bytes")
    content_type = models.CharField(max_length=80)
    size = models.PositiveIntegerField()
    scan = models.CharField(max_length=12, choices=AttachmentScan.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"Attachment #{self.pk}"
