"""The per-recipient channel decision (DESIGN.md §5.3), and link-tracking seams.

``channel_choose`` is the one place the pipeline asks "how may this message travel?".
It gathers the facts — the contact's usable S/MIME certificate and OpenPGP key
(re-validated at send time, ``contacts/keys/selectors.py``), what the destination can
receive (the relay, by the organization's declaration that it enforces TLS onward, or
the domain's MX, probed for verified STARTTLS/MTA-STS and cached), the policy and
whether the template carries PHI — and asks ``campaigns.secure.policy.decide_channel``:
S/MIME ▸ PGP ▸ enforced verified TLS ▸ portal. PHI never travels in plaintext.

The local development sink (``LUXMAIL_SMTP_SECURITY=none``, refused by settings in
production) keeps mail on this machine; it counts as a verified destination and the
``tls`` channel is then recorded as ``plaintext-dev`` so it is visible in the record.

:func:`secure_payload` turns the rendered message into what travels: encrypted to the
certificate or key (generic outer subject for PHI-bearing templates unless the
campaign opted in), or — for the portal — a notice without PHI whose link opens the
content stored encrypted in ``portal/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from campaigns.secure.errors import PolicyError
from campaigns.secure.policy import Channel, ChannelFacts, decide_channel
from campaigns.secure.tls import (
    Capability,
    TLSStatus,
    domain_can_receive_verified_tls,
    domain_of,
    relay_capability,
)
from campaigns.senders.selectors import org_signers
from campaigns.sending import hooks
from campaigns.sending.direct import Route
from contacts.keys.selectors import keys_for_send
from contacts.models import ContactPreference
from luxmail import org
from luxmail.models import DeliveryMode
from luxmail.securemail import pgp, smime

if TYPE_CHECKING:
    from campaigns.content.splice import SplicedPart
    from luxmail import crypto

TLS = "tls"
SMIME = "smime"
PGP = "pgp"
PORTAL = "portal"
OPPORTUNISTIC = "opportunistic"
PLAINTEXT_DEV = "plaintext-dev"
SECURED = (SMIME, PGP, TLS, PORTAL)  # counted as "secured" in reports


@dataclass(frozen=True)
class ChannelDecision:
    channel: str
    reason: str
    # Direct-to-MX delivery: the domain and whether TLS must verify; None = the relay.
    route: Route | None = None
    certificate: Any = None  # S/MIME: the recipient's x509.Certificate
    public_key: Any = None  # PGP: the recipient's luxmail.securemail.pgp.PublicKey


class ChannelRefused(Exception):
    """No permitted channel exists for this recipient under the campaign's policy."""


class ChannelDeferred(Exception):
    """The destination could not be assessed now (DNS or every MX down): retry later.

    Nothing is sent; under ``tls_or_better`` an outage must not push recipients to the
    portal (docs/architecture.md, Decisions).
    """


@dataclass
class SecureContext:
    """What one send batch knows for the channel decision (loaded once per batch)."""

    direct: bool = False
    relay_enforces_tls: bool = False
    encrypted_subject: str = "Secure message"
    org_name: str = ""
    keys: dict[int, Any] = field(default_factory=dict)  # contact id -> SendKeys
    capabilities: dict[str, Capability] = field(default_factory=dict)
    settings_row: Any = None
    signers: dict[str, Any] | None = None  # the org's signing keys, loaded on first use
    # Contacts who chose the secure portal in the preference center (issue 18).
    portal_preferred: frozenset[int] = frozenset()
    # channel_choose's answers for recipients without keys over the relay: they depend
    # only on the policy, the template and the relay, so each is decided once a batch.
    decisions: dict[tuple[Any, ...], ChannelDecision] = field(default_factory=dict)

    @classmethod
    def load(
        cls, *, emails: dict[int, str] | None = None, access: crypto.Access | None = None
    ) -> SecureContext:
        """Org delivery settings and the usable keys of ``emails``' contacts."""

        row = org.get_settings()
        keys = keys_for_send(emails=emails, access=access) if emails and access else {}
        preferred = (
            ContactPreference.objects.filter(
                contact_id__any_of=list(emails), channel="portal"
            ).values_list("contact_id", flat=True)
            if emails
            else []
        )
        return cls(
            direct=row.delivery_mode == DeliveryMode.DIRECT,
            relay_enforces_tls=row.relay_enforces_tls,
            encrypted_subject=row.encrypted_subject or "Secure message",
            org_name=row.name,
            keys=keys,
            settings_row=row,
            portal_preferred=frozenset(preferred),
        )

    def signer(self, channel: str) -> Any:
        """The organization's signing key for ``channel`` (S/MIME or PGP), or None."""
        if channel not in (SMIME, PGP):
            return None
        if self.signers is None:
            self.signers = org_signers()
        return self.signers.get(channel)

    def capability(self, domain: str) -> Capability:
        found = self.capabilities.get(domain)
        if found is None:
            found = domain_can_receive_verified_tls(domain)
            self.capabilities[domain] = found
        return found


_DEV_SINK = Capability(
    status=TLSStatus.VERIFIED_TLS, reason="development sink: the mail stays on this machine"
)
_RELAY = {flag: relay_capability(enforces_tls_onward=flag) for flag in (True, False)}


def channel_choose(
    *,
    policy: str,
    phi_bearing: bool,
    contact_id: int | None,
    relay_security: str,
    email: str = "",
    secure: SecureContext | None = None,
) -> ChannelDecision:
    """How one message may travel. Raises :class:`ChannelRefused` when no channel is
    permitted and :class:`ChannelDeferred` when the destination cannot be assessed now.

    ``secure`` carries the batch's facts; without it (test sends with sample data) the
    organization's delivery settings are read and the recipient has no keys.
    """
    secure = secure or SecureContext.load()
    keys = secure.keys.get(contact_id) if contact_id is not None else None
    if keys is not None or secure.direct:
        return _channel_choose(policy, phi_bearing, contact_id, relay_security, email, secure, keys)
    memo = (policy, phi_bearing, relay_security, contact_id in secure.portal_preferred)
    decision = secure.decisions.get(memo)
    if decision is None:
        decision = _channel_choose(
            policy, phi_bearing, contact_id, relay_security, email, secure, keys
        )
        secure.decisions[memo] = decision
    return decision


def _channel_choose(
    policy: str,
    phi_bearing: bool,
    contact_id: int | None,
    relay_security: str,
    email: str,
    secure: SecureContext,
    keys: Any,
) -> ChannelDecision:
    certificate = getattr(keys, "smime", None)
    public_key = getattr(keys, "pgp", None)
    domain = ""
    if secure.direct:
        try:
            domain = domain_of(email)
        except ValueError:
            raise ChannelRefused("the recipient address has no domain") from None
    # What the destination can receive is asked only when the decision may need it.
    capability: Capability | None = None
    if certificate is None and public_key is None and policy in ("tls_or_better", "opportunistic"):
        if secure.direct:
            capability = secure.capability(domain)
        elif relay_security == "none":
            capability = _DEV_SINK
        else:
            capability = _RELAY[secure.relay_enforces_tls]
    try:
        decision = decide_channel(
            ChannelFacts(
                policy=policy,
                phi_bearing=phi_bearing,
                has_valid_smime=certificate is not None,
                has_valid_pgp=public_key is not None,
                tls=capability,
            )
        )
    except PolicyError as error:
        raise ChannelRefused(str(error)) from None
    channel, reason = decision.channel, decision.reason
    if channel in (Channel.TLS, Channel.OPPORTUNISTIC) and contact_id in secure.portal_preferred:
        # The recipient chose the secure portal over plain e-mail (preference center).
        channel, reason = Channel.PORTAL, "the recipient prefers the secure portal"
    if channel == Channel.DEFER:
        raise ChannelDeferred(reason)
    route = Route(domain, verified=channel == Channel.TLS) if secure.direct else None
    name = str(channel)
    if (
        not secure.direct
        and relay_security == "none"
        and channel
        in (
            Channel.TLS,
            Channel.OPPORTUNISTIC,
        )
    ):
        name, reason = PLAINTEXT_DEV, "development sink without TLS (never in production)"
    return ChannelDecision(
        name,
        reason,
        route=route,
        certificate=certificate if channel == Channel.SMIME else None,
        public_key=public_key if channel == Channel.PGP else None,
    )


def secure_payload(
    decision: ChannelDecision, data: bytes, *, outer_subject: str | None, signer: Any = None
) -> bytes:
    """The message as it travels: encrypted for S/MIME and PGP, unchanged otherwise.

    ``outer_subject`` replaces the visible Subject of an encrypted message (the real
    one travels inside as a protected header); ``signer`` (the organization's key of
    the channel's kind, :meth:`SecureContext.signer`) signs it first. Raises
    :class:`campaigns.secure.errors.EncryptionError` when encryption fails — never
    falls back to sending the clear message.
    """
    if decision.channel == SMIME:
        return smime.encrypt_message(
            data, decision.certificate, sign_with=signer, outer_subject=outer_subject
        )
    if decision.channel == PGP:
        return pgp.encrypt_message(
            data, decision.public_key, sign_with=signer, outer_subject=outer_subject
        )
    return data


def portal_notice(
    *,
    message_id: int,
    campaign_id: int,
    contact_id: int | None,
    email: str,
    subject: str,
    html: str,
    text: str,
    secure: SecureContext | None,
    unsubscribe_url: str = "",
) -> tuple[str, str, str]:
    """Store the rendered message in the portal (encrypted; once per message) and
    return the notice that replaces it: ``(subject, html, text)`` without any PHI."""
    return hooks.portal().store_for_delivery(
        message_id=message_id,
        campaign_id=campaign_id,
        contact_id=contact_id,
        recipient_email=email,
        subject=subject,
        html=html,
        text=text,
        settings_row=secure.settings_row if secure is not None else None,
        unsubscribe_url=unsubscribe_url,
    )


def rewrite_links(html: str, *, message_id: int, campaign_id: int, enabled: bool) -> str:
    """Click tracking: the registered tracker (reporting) replaces links with signed redirects."""
    tracker = hooks.tracker()
    if not enabled or message_id <= 0 or tracker is None:
        return html
    return tracker.rewrite_links(html, message_id=message_id, campaign_id=campaign_id)


def tracked_html(
    part: SplicedPart | None, *, campaign_id: int, clicks: bool, opens: bool
) -> SplicedPart | None:
    """The campaign's spliced HTML part with click and open tracking applied once per
    template (the registered tracker's ``track_part``), or None: then every message is
    tracked after rendering (:func:`rewrite_links`, :func:`open_pixel`)."""
    tracker = hooks.tracker()
    if part is None or tracker is None or not (clicks or opens):
        return None
    return tracker.track_part(part, campaign_id=campaign_id, clicks=clicks, opens=opens)


def tracking_marks(
    part: SplicedPart, *, message_id: int, campaign_id: int, pixel: bool = True
) -> dict[object, object] | None:
    """One message's tracking URLs for a part from :func:`tracked_html` (None when no
    tracker is registered any more)."""
    tracker = hooks.tracker()
    if tracker is None:
        return None
    return tracker.marks(
        part.mark_keys, message_id=message_id, campaign_id=campaign_id, pixel=pixel
    )


def open_pixel(html: str, *, message_id: int, campaign_id: int, enabled: bool) -> str:
    """Open tracking: the registered tracker (reporting) appends a signed 1x1 image."""
    tracker = hooks.tracker()
    if not enabled or message_id <= 0 or tracker is None:
        return html
    return tracker.add_open_pixel(html, message_id=message_id, campaign_id=campaign_id)
