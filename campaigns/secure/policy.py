"""Which channel carries one message: a pure decision from facts (issue 5, item 1).

The send pipeline's ``channel_choose`` gathers the facts — does the contact have a
currently valid S/MIME certificate or OpenPGP key, what can the destination receive
(:class:`campaigns.secure.tls.Capability`), the secure policy in force (org default or
campaign override) and whether the template is PHI-bearing — and calls
:func:`decide_channel`. Order of preference: S/MIME ▸ PGP/MIME ▸ enforced verified
TLS ▸ portal. PHI never travels in plaintext: ``opportunistic`` is refused for a
PHI-bearing template, and every other policy ends in the portal, never plaintext.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from campaigns.secure.errors import PolicyError
from campaigns.secure.tls import Capability, TLSStatus
from luxmail.models import SecurePolicy

__all__ = [
    "Channel",
    "ChannelDecision",
    "ChannelFacts",
    "SecurePolicy",
    "check_policy_allowed",
    "decide_channel",
]


class Channel(enum.StrEnum):
    SMIME = "smime"  # S/MIME enveloped data (AES-256) to the contact's certificate
    PGP = "pgp"  # PGP/MIME to the contact's OpenPGP key
    TLS = "tls"  # the message itself, over enforced and verified TLS
    PORTAL = "portal"  # a notice without PHI; the content waits in the portal
    OPPORTUNISTIC = "opportunistic"  # TLS when offered, unverified; templates without PHI
    DEFER = "defer"  # the destination could not be assessed now: retry later, send nothing

    @property
    def encrypted_end_to_end(self) -> bool:
        return self in (Channel.SMIME, Channel.PGP)

    @property
    def secured(self) -> bool:
        """Counts as "secured" in reports: PHI was protected end to end or in transit."""
        return self in (Channel.SMIME, Channel.PGP, Channel.TLS, Channel.PORTAL)


@dataclass(frozen=True)
class ChannelFacts:
    policy: SecurePolicy | str
    phi_bearing: bool
    has_valid_smime: bool = False
    has_valid_pgp: bool = False
    tls: Capability | TLSStatus | str | None = None  # None: not assessed


@dataclass(frozen=True)
class ChannelDecision:
    channel: Channel
    reason: str  # operator-facing, stored on the message; names no person or address


def check_policy_allowed(policy: SecurePolicy | str, *, phi_bearing: bool) -> SecurePolicy:
    """Validate a policy for a template; raises :class:`PolicyError` with user-facing text.

    Call it when a campaign is saved or started, so the marketer learns before sending.
    """
    try:
        parsed = SecurePolicy(policy)
    except ValueError:
        raise PolicyError(
            "Unknown secure-delivery policy. Choose enforced TLS or better, end-to-end or "
            "portal, portal only, or opportunistic.",
            code="unknown_policy",
        ) from None
    if parsed == SecurePolicy.OPPORTUNISTIC and phi_bearing:
        raise PolicyError(
            "Opportunistic delivery may send in plaintext, so it is not allowed for a "
            "template that uses PHI fields. Choose 'Enforced TLS or better', 'End-to-end or "
            "portal' or 'Secure portal only'.",
            code="opportunistic_phi",
        )
    return parsed


def decide_channel(facts: ChannelFacts) -> ChannelDecision:
    """Choose the channel for one message. Pure; raises :class:`PolicyError` only for a
    policy that is not allowed (see :func:`check_policy_allowed`)."""
    policy = check_policy_allowed(facts.policy, phi_bearing=facts.phi_bearing)
    if policy == SecurePolicy.PORTAL_ONLY:
        return ChannelDecision(Channel.PORTAL, "policy: secure portal only")
    if facts.has_valid_smime:
        return ChannelDecision(Channel.SMIME, "the contact has a valid S/MIME certificate")
    if facts.has_valid_pgp:
        return ChannelDecision(Channel.PGP, "the contact has a valid OpenPGP key")
    if policy == SecurePolicy.END_TO_END_OR_PORTAL:
        return ChannelDecision(
            Channel.PORTAL,
            "policy requires end-to-end encryption and the contact has no valid certificate or key",
        )
    status, detail = _tls(facts.tls)
    if policy == SecurePolicy.OPPORTUNISTIC:
        if status == TLSStatus.VERIFIED_TLS:
            return ChannelDecision(Channel.TLS, f"verified TLS: {detail}")
        return ChannelDecision(
            Channel.OPPORTUNISTIC, "template without PHI; TLS used when the destination offers it"
        )
    # tls_or_better
    if status == TLSStatus.VERIFIED_TLS:
        return ChannelDecision(Channel.TLS, f"verified TLS: {detail}")
    if status == TLSStatus.UNREACHABLE:
        return ChannelDecision(
            Channel.DEFER, f"destination could not be assessed ({detail}); retry later"
        )
    if status is None:
        return ChannelDecision(
            Channel.PORTAL, "destination TLS capability unknown; secure portal used"
        )
    return ChannelDecision(Channel.PORTAL, f"no verified TLS ({detail}); secure portal used")


def _tls(value: Capability | TLSStatus | str | None) -> tuple[TLSStatus | None, str]:
    if value is None:
        return None, "not assessed"
    if isinstance(value, Capability):
        return value.status, value.reason
    status = TLSStatus(value)
    return status, str(status).replace("_", " ")
