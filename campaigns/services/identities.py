"""Sender identity writes: create, DKIM key generation, sending without DKIM."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from campaigns.models import (
    DkimAlgorithm,
    SenderIdentity,
)
from campaigns.selectors import user_is_admin
from campaigns.senders import signing
from campaigns.services.errors import CampaignError, _user
from luxmail import audit, crypto
from luxmail.actors import Actor

# --- sender identities ---------------------------------------------------------------------


def sender_create(
    *,
    name: str,
    from_name: str,
    from_email: str,
    actor: Actor,
    reply_to: str = "",
    postal_address: str = "",
    dkim_domain: str = "",
    dkim_selector: str = "",
    dkim_algorithm: str = DkimAlgorithm.RSA,
    generate_dkim: bool = True,
    bounce_domain: str = "",
    request: HttpRequest | None = None,
) -> SenderIdentity:
    """Create a sender identity, by default with a new DKIM key for the From domain.

    Audits ``sender.create``. Raises :class:`CampaignError` for bad input.
    """

    for label, value in (("From address", from_email), ("Reply-To", reply_to)):
        if value:
            try:
                validate_email(value)
            except ValidationError:
                raise CampaignError(f"{label} is not a valid e-mail address.") from None
    name = " ".join(name.split())
    if not name or not from_name.strip():
        raise CampaignError("A sender identity needs a name and a From name.")
    with transaction.atomic():
        if SenderIdentity.objects.filter(name=name).exists():
            raise CampaignError(f"A sender identity named '{name}' already exists.")
        sender = SenderIdentity.objects.create(
            name=name,
            from_name=from_name.strip(),
            from_email=from_email.strip(),
            reply_to=reply_to.strip(),
            postal_address=postal_address.strip(),
            bounce_domain=bounce_domain.strip().lower(),
            created_by=_user(actor),
        )
        audit.record("sender.create", actor=actor, request=request, target=sender)
        if generate_dkim:
            sender = sender_generate_dkim(
                sender=sender,
                actor=actor,
                domain=dkim_domain or from_email.rpartition("@")[2],
                selector=dkim_selector or f"lm{timezone.now():%Y%m}",
                algorithm=dkim_algorithm,
                request=request,
            )
    return sender


_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def sender_generate_dkim(
    *,
    sender: SenderIdentity,
    actor: Actor,
    domain: str,
    selector: str,
    algorithm: str = DkimAlgorithm.RSA,
    request: HttpRequest | None = None,
) -> SenderIdentity:
    """Generate (or replace) the identity's DKIM key; the private key is stored encrypted.

    The DNS TXT record to publish is :func:`campaigns.selectors.dkim_dns_record`.
    Audits ``sender.dkim_generate`` (domain, selector, algorithm; never key material).
    """
    domain = domain.strip().lower().rstrip(".")
    selector = selector.strip().lower()
    if not _LABEL.match(selector):
        raise CampaignError("The DKIM selector must be a DNS label (letters, digits, hyphens).")
    if not domain or not all(_LABEL.match(part) for part in domain.split(".")):
        raise CampaignError("The DKIM domain is not a valid domain name.")
    if algorithm not in DkimAlgorithm.values:
        raise CampaignError("Choose RSA-2048 or Ed25519 for the DKIM key.")
    key = signing.generate_key(algorithm)
    with transaction.atomic():
        sender = SenderIdentity.objects.select_for_update().get(pk=sender.pk)
        sender.dkim_domain = domain
        sender.dkim_selector = selector
        sender.dkim_algorithm = algorithm
        crypto.seal(sender, "dkim_private_key", key.private_pem)
        sender.dkim_public_key = key.public_b64
        sender.dkim_created_at = timezone.now()
        sender.save()
        audit.record(
            "sender.dkim_generate",
            actor=actor,
            request=request,
            target=sender,
            details={"domain": domain, "selector": selector, "algorithm": algorithm},
        )
    return sender


def sender_allow_without_dkim(
    *, sender: SenderIdentity, allow: bool, actor: Actor, request: HttpRequest | None = None
) -> SenderIdentity:
    """Admins only: allow (or stop allowing) sends from an identity without DKIM.

    Raises :class:`CampaignError` for non-Admins. Audits ``sender.allow_without_dkim``.
    """
    if not user_is_admin(actor):
        raise CampaignError("Only an Admin may allow sending without DKIM.")
    with transaction.atomic():
        sender = SenderIdentity.objects.select_for_update().get(pk=sender.pk)
        if sender.allow_without_dkim != allow:
            sender.allow_without_dkim = allow
            sender.save(update_fields=["allow_without_dkim", "updated_at"])
            audit.record(
                "sender.allow_without_dkim",
                actor=actor,
                request=request,
                target=sender,
                details={"allow": allow},
            )
    return sender
