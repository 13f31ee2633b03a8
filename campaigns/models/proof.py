"""Delivery proof: how one message left LuxMail (issue 17 §2).

One row per message that reached an SMTP server, rewritten on every try: the host
that answered (the relay or the recipient domain's MX), the TLS session (protocol,
cipher, the peer certificate's SHA-256 fingerprint and whether it was verified), the
MTA-STS policy mode that applied, and when the session was secured and the reply
read. The reply itself, the channel and why it was chosen stay on ``Message``.
Holds no address and no content.
"""

from __future__ import annotations

import uuid

from django.db import models

from campaigns.models.sending import Message
from luxmail.crypto import EncryptedField


class DeliveryProof(models.Model):
    message = models.OneToOneField(
        Message,
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="delivery_proof",
        db_constraint=False,  # messages are partitioned (luxmail/partitions.py)
    )
    host = models.CharField(max_length=253, help_text="The relay or MX host that answered.")
    port = models.PositiveIntegerField(default=25)
    route = models.CharField(max_length=8, help_text="relay or direct (MX).")
    tls_version = models.CharField(max_length=16, blank=True, help_text="Empty: no TLS.")
    tls_cipher = models.CharField(max_length=100, blank=True)
    peer_cert_sha256 = models.CharField(max_length=64, blank=True)
    cert_verified = models.BooleanField(default=False)
    mta_sts = models.CharField(
        max_length=10, blank=True, help_text="MTA-STS mode that applied (direct delivery)."
    )
    dane = models.CharField(
        max_length=16, blank=True, help_text="DANE outcome; empty: not checked (not supported)."
    )
    secured_at = models.DateTimeField(null=True, blank=True)
    replied_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"delivery proof of message {self.message_id}"


class EvidenceKey(models.Model):
    """The organization's Ed25519 key that signs evidence-pack manifests (issue 17 §3).

    Created on first use by ``campaigns/evidence/keys.py``. The private key (raw 32
    bytes) is encrypted with the key ring like every other secret; the public key is
    kept in the clear (PEM), published in every pack and on the settings page. Only
    one key is current (``retired_at`` null); a retired key keeps its row so that
    older packs can still be matched to it.
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    private_key = EncryptedField(kind="bytes", phi=False)
    public_pem = models.TextField()
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the raw public key.")
    created_at = models.DateTimeField(auto_now_add=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["retired_at"],
                condition=models.Q(retired_at__isnull=True),
                name="evidencekey_one_current",
            )
        ]

    def __str__(self) -> str:
        return f"Evidence key {self.fingerprint[:16]}"
