"""The channel decision table (campaigns/secure/policy.py) — pure, no I/O."""

from __future__ import annotations

import pytest

from campaigns.secure.errors import PolicyError
from campaigns.secure.policy import (
    Channel,
    ChannelFacts,
    SecurePolicy,
    check_policy_allowed,
    decide_channel,
)
from campaigns.secure.tls import Capability, TLSStatus, relay_capability

V, N, U, X = (
    TLSStatus.VERIFIED_TLS,
    TLSStatus.NO_TLS,
    TLSStatus.UNTRUSTED_CERT,
    TLSStatus.UNREACHABLE,
)
TLS_OR_BETTER = SecurePolicy.TLS_OR_BETTER
E2E = SecurePolicy.END_TO_END_OR_PORTAL
PORTAL_ONLY = SecurePolicy.PORTAL_ONLY
OPP = SecurePolicy.OPPORTUNISTIC

# policy, phi, smime, pgp, tls → expected channel
TABLE = [
    # tls_or_better: S/MIME ▸ PGP ▸ verified TLS ▸ portal (defer when unassessable)
    (TLS_OR_BETTER, True, True, True, V, Channel.SMIME),
    (TLS_OR_BETTER, True, True, False, N, Channel.SMIME),
    (TLS_OR_BETTER, True, False, True, V, Channel.PGP),
    (TLS_OR_BETTER, True, False, True, N, Channel.PGP),
    (TLS_OR_BETTER, True, False, False, V, Channel.TLS),
    (TLS_OR_BETTER, True, False, False, N, Channel.PORTAL),
    (TLS_OR_BETTER, True, False, False, U, Channel.PORTAL),
    (TLS_OR_BETTER, True, False, False, X, Channel.DEFER),
    (TLS_OR_BETTER, True, False, False, None, Channel.PORTAL),
    (TLS_OR_BETTER, False, False, False, N, Channel.PORTAL),
    (TLS_OR_BETTER, False, False, False, V, Channel.TLS),
    # end_to_end_or_portal: TLS alone is not enough
    (E2E, True, True, False, V, Channel.SMIME),
    (E2E, True, False, True, V, Channel.PGP),
    (E2E, True, False, False, V, Channel.PORTAL),
    (E2E, True, False, False, N, Channel.PORTAL),
    (E2E, True, False, False, X, Channel.PORTAL),
    (E2E, False, False, False, V, Channel.PORTAL),
    # portal_only: even a contact with a certificate gets the portal
    (PORTAL_ONLY, True, True, True, V, Channel.PORTAL),
    (PORTAL_ONLY, False, False, False, N, Channel.PORTAL),
    # opportunistic (templates without PHI only)
    (OPP, False, True, False, N, Channel.SMIME),
    (OPP, False, False, True, N, Channel.PGP),
    (OPP, False, False, False, V, Channel.TLS),
    (OPP, False, False, False, N, Channel.OPPORTUNISTIC),
    (OPP, False, False, False, U, Channel.OPPORTUNISTIC),
    (OPP, False, False, False, X, Channel.OPPORTUNISTIC),
    (OPP, False, False, False, None, Channel.OPPORTUNISTIC),
]


@pytest.mark.parametrize(("policy", "phi", "smime", "pgp", "tls", "expected"), TABLE)
def test_decision_table(
    policy: SecurePolicy,
    phi: bool,
    smime: bool,
    pgp: bool,
    tls: TLSStatus | None,
    expected: Channel,
) -> None:
    decision = decide_channel(
        ChannelFacts(
            policy=policy, phi_bearing=phi, has_valid_smime=smime, has_valid_pgp=pgp, tls=tls
        )
    )
    assert decision.channel == expected
    assert decision.reason


@pytest.mark.parametrize("policy", list(SecurePolicy))
@pytest.mark.parametrize("smime", [True, False])
@pytest.mark.parametrize("pgp", [True, False])
@pytest.mark.parametrize("tls", [V, N, U, X, None])
def test_phi_never_travels_in_plaintext(
    policy: SecurePolicy, smime: bool, pgp: bool, tls: TLSStatus | None
) -> None:
    facts = ChannelFacts(
        policy=policy, phi_bearing=True, has_valid_smime=smime, has_valid_pgp=pgp, tls=tls
    )
    if policy == SecurePolicy.OPPORTUNISTIC:
        with pytest.raises(PolicyError) as raised:
            decide_channel(facts)
        assert raised.value.code == "opportunistic_phi"
        return
    channel = decide_channel(facts).channel
    assert channel in {Channel.SMIME, Channel.PGP, Channel.TLS, Channel.PORTAL, Channel.DEFER}
    if channel == Channel.TLS:
        assert tls == V


def test_opportunistic_refused_for_phi_with_a_clear_message() -> None:
    with pytest.raises(PolicyError) as raised:
        check_policy_allowed("opportunistic", phi_bearing=True)
    assert "not allowed for a template that uses PHI" in str(raised.value)
    assert check_policy_allowed("opportunistic", phi_bearing=False) == SecurePolicy.OPPORTUNISTIC


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(PolicyError) as raised:
        decide_channel(ChannelFacts(policy="whatever", phi_bearing=False))
    assert raised.value.code == "unknown_policy"


def test_capability_reason_is_carried_into_the_decision() -> None:
    capability = Capability(status=U, reason="the certificate is not trusted")
    decision = decide_channel(ChannelFacts(policy=TLS_OR_BETTER, phi_bearing=True, tls=capability))
    assert decision.channel == Channel.PORTAL
    assert "the certificate is not trusted" in decision.reason


def test_relay_mode_uses_the_orgs_declaration() -> None:
    enforced = decide_channel(
        ChannelFacts(
            policy=TLS_OR_BETTER, phi_bearing=True, tls=relay_capability(enforces_tls_onward=True)
        )
    )
    assert enforced.channel == Channel.TLS
    not_enforced = decide_channel(
        ChannelFacts(
            policy=TLS_OR_BETTER, phi_bearing=True, tls=relay_capability(enforces_tls_onward=False)
        )
    )
    assert not_enforced.channel == Channel.PORTAL


def test_secured_channels_for_reports() -> None:
    assert {c for c in Channel if c.secured} == {
        Channel.SMIME,
        Channel.PGP,
        Channel.TLS,
        Channel.PORTAL,
    }
    assert Channel.SMIME.encrypted_end_to_end and not Channel.TLS.encrypted_end_to_end
