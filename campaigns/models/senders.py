"""Senders: the From identities (with their DKIM keys) and the organization's signing keys."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from luxmail.crypto import EncryptedField


class DkimAlgorithm(models.TextChoices):
    RSA = "rsa-sha256", "RSA-2048 (rsa-sha256)"
    ED25519 = "ed25519-sha256", "Ed25519 (ed25519-sha256)"


class SenderIdentity(models.Model):
    """Who a campaign is from, and the DKIM key that signs it (private key encrypted)."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=100, unique=True, help_text="Shown in LuxMail only.")
    from_name = models.CharField(max_length=200)
    from_email = models.EmailField()
    reply_to = models.EmailField(blank=True)
    postal_address = models.TextField(
        blank=True, help_text="Printed in every message; the organization's address if empty."
    )
    dkim_domain = models.CharField(max_length=253, blank=True)
    dkim_selector = models.CharField(max_length=63, blank=True)
    dkim_algorithm = models.CharField(max_length=16, choices=DkimAlgorithm.choices, blank=True)
    dkim_private_key = EncryptedField(kind="bytes", phi=False)
    dkim_public_key = models.TextField(blank=True, help_text="Base64 p= value of the TXT record.")
    dkim_created_at = models.DateTimeField(null=True, blank=True)
    bounce_domain = models.CharField(
        max_length=253,
        blank=True,
        help_text="Domain of the VERP return path (bounces+token@domain); the DKIM domain "
        "when empty.",
    )
    allow_without_dkim = models.BooleanField(
        default=False, help_text="Admins only: allow sending although no DKIM key exists."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "sender identities"

    def __str__(self) -> str:
        return self.name

    @property
    def has_dkim(self) -> bool:
        return bool(self.dkim_private_key and self.dkim_selector and self.dkim_domain)


class SigningKind(models.TextChoices):
    SMIME = "smime", "S/MIME certificate"
    PGP = "pgp", "OpenPGP key"


class OrgSigningKey(models.Model):
    """The organization's optional key that signs every S/MIME or PGP/MIME message.

    One per kind. The private key is stored encrypted with the key ring (S/MIME: PKCS#8
    PEM without a passphrase; OpenPGP: the armored secret key as uploaded, with its
    passphrase encrypted beside it). Set and removed through ``campaigns/services.py``.
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=8, choices=SigningKind.choices, unique=True)
    private_key = EncryptedField(kind="bytes", phi=False)
    passphrase = EncryptedField(kind="text", phi=False)
    # S/MIME: the certificate and its chain (PEM); OpenPGP: the public key (armored).
    public = models.TextField()
    fingerprint = models.CharField(max_length=128)
    identity = models.CharField(max_length=500, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.fingerprint[:16]}"

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()
