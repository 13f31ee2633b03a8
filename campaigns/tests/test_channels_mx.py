"""Direct-to-MX delivery with real aiosmtpd servers standing in for recipient MXes.

``LUXMAIL_MX_OVERRIDES`` routes three test domains to three servers and
``LUXMAIL_MX_CA_FILE`` makes the test CA the trust store:

* ``tls`` domain — STARTTLS with a certificate from the test CA → ``tls`` channel;
* ``plain`` domain — no STARTTLS → ``portal`` (the notice only);
* ``untrusted`` domain — STARTTLS with a self-signed certificate → ``portal``.

The assertions are on what each server received: the PHI of a PHI-bearing template
reaches only the verified-TLS server, and only inside a TLS session.
"""

from __future__ import annotations

import uuid

import pytest

from campaigns.models import Message, MessageState
from campaigns.secure import tls
from campaigns.tests.smtp_fixtures import TestCA, self_signed_server_certificate, smtp_server
from luxmail import org
from luxmail.models import DeliveryMode
from portal.models import PortalMessage
from portal.tests.helpers import (
    contains_any,
    make_patient,
    parse,
    phi_campaign,
    phi_values,
    portal_link,
    start_and_drain,
)

pytestmark = [pytest.mark.postgres, pytest.mark.smtp, pytest.mark.django_db]


@pytest.fixture
def mx_servers(settings, tmp_path):
    ca = TestCA(tmp_path / "ca")
    suffix = uuid.uuid4().hex[:8]
    domains = {
        "tls": f"tls-{suffix}.test",
        "plain": f"plain-{suffix}.test",
        "untrusted": f"untrusted-{suffix}.test",
    }
    with (
        smtp_server(starttls=ca.issue_server()) as verified,
        smtp_server() as plain,
        smtp_server(starttls=self_signed_server_certificate(tmp_path / "self")) as untrusted,
    ):
        servers = {"tls": verified, "plain": plain, "untrusted": untrusted}
        settings.LUXMAIL_MX_OVERRIDES = [
            f"{domains[name]}={server.address}" for name, server in servers.items()
        ]
        settings.LUXMAIL_MX_CA_FILE = str(ca.ca_file)
        for domain in domains.values():
            tls.capability_forget(domain)
        yield domains, servers
        for domain in domains.values():
            tls.capability_forget(domain)


def test_verified_tls_mx_gets_the_message_others_get_the_portal(postgres, sink, admin, mx_servers):
    domains, servers = mx_servers
    org.org_settings_update(actor=admin, delivery_mode=DeliveryMode.DIRECT)
    patients = {
        name: make_patient(f"patient.{uuid.uuid4().hex[:6]}@{domain}", actor=admin)
        for name, domain in domains.items()
    }
    campaign = phi_campaign(list(patients.values()), actor=admin, policy="tls_or_better")
    start_and_drain(campaign, actor=admin)

    channels = {
        name: Message.objects.get(campaign=campaign, contact=patient)
        for name, patient in patients.items()
    }
    assert {n: (m.state, m.channel) for n, m in channels.items()} == {
        "tls": (MessageState.SENT, "tls"),
        "plain": (MessageState.SENT, "portal"),
        "untrusted": (MessageState.SENT, "portal"),
    }
    assert "does not offer STARTTLS" in channels["plain"].channel_reason
    assert "not trusted" in channels["untrusted"].channel_reason
    assert sink.messages == []  # direct mode: the relay is not used

    # The verified server got the real message, inside TLS.
    [delivered] = servers["tls"].messages
    assert delivered.tls is True
    assert contains_any(delivered.data, phi_values(patients["tls"]))

    # The others got a notice: no PHI in any byte, a link without PHI, content waiting.
    for name in ("plain", "untrusted"):
        [notice] = servers[name].messages
        assert contains_any(notice.data, phi_values(patients[name])) == [], name
        link = portal_link(notice.data)
        assert contains_any(link, [*phi_values(patients[name]), "@", domains[name]]) == []
        assert parse(notice.data)["Subject"] == org.get_settings().portal_notification_subject
        assert PortalMessage.objects.filter(message=channels[name]).exists()
    assert servers["plain"].messages[0].tls is False  # a notice may travel in clear
    assert servers["untrusted"].messages[0].tls is True  # opportunistic, unverified


def test_end_to_end_policy_sends_a_tls_capable_domain_to_the_portal(
    postgres, sink, admin, mx_servers
):
    domains, servers = mx_servers
    org.org_settings_update(actor=admin, delivery_mode=DeliveryMode.DIRECT)
    patient = make_patient(f"e2e.{uuid.uuid4().hex[:6]}@{domains['tls']}", actor=admin)
    campaign = phi_campaign([patient], actor=admin, policy="end_to_end_or_portal")
    start_and_drain(campaign, actor=admin)
    message = Message.objects.get(campaign=campaign)
    assert message.channel == "portal"
    [notice] = servers["tls"].messages
    assert contains_any(notice.data, phi_values(patient)) == []


def test_relay_mode_uses_the_relay_only_when_declared_to_enforce_tls(
    postgres, admin, settings, tmp_path
):
    """Relay mode: verified TLS to the relay always; PHI over it only once the org
    declares that the relay enforces TLS onward — otherwise the portal."""
    ca = TestCA(tmp_path / "ca")
    with smtp_server(starttls=ca.issue_server()) as relay:
        settings.LUXMAIL_SMTP_HOST = "127.0.0.1"
        settings.LUXMAIL_SMTP_PORT = relay.port
        settings.LUXMAIL_SMTP_SECURITY = "starttls"
        settings.LUXMAIL_SMTP_CA_FILE = str(ca.ca_file)
        settings.LUXMAIL_SMTP_USER = None
        first = make_patient(f"r1.{uuid.uuid4().hex[:6]}@example.test", actor=admin)
        start_and_drain(phi_campaign([first], actor=admin), actor=admin)
        assert Message.objects.get(contact=first).channel == "portal"
        assert contains_any(relay.messages[0].data, phi_values(first)) == []

        org.org_settings_update(actor=admin, relay_enforces_tls=True)
        second = make_patient(f"r2.{uuid.uuid4().hex[:6]}@example.test", actor=admin)
        start_and_drain(phi_campaign([second], actor=admin), actor=admin)
        message = Message.objects.get(contact=second)
        assert message.channel == "tls" and "enforces TLS onward" in message.channel_reason
        assert relay.messages[1].tls is True
        assert contains_any(relay.messages[1].data, phi_values(second))
    from campaigns.sending.transport import pool

    pool().close_all()


def test_tls_lost_after_probing_defers_then_uses_the_portal_never_plaintext(
    postgres, sink, admin, settings, tmp_path
):
    """The cached capability said "verified TLS", but at send time the MX no longer
    offers STARTTLS: nothing is sent, the message is deferred, and the retry — seeing
    the refreshed capability — sends a portal notice instead."""
    from django.utils import timezone

    from campaigns.sending import delivery

    ca = TestCA(tmp_path / "ca")
    domain = f"flaky-{uuid.uuid4().hex[:8]}.test"
    settings.LUXMAIL_MX_CA_FILE = str(ca.ca_file)
    org.org_settings_update(actor=admin, delivery_mode=DeliveryMode.DIRECT)
    tls.capability_forget(domain)
    with smtp_server(starttls=ca.issue_server()) as good:
        settings.LUXMAIL_MX_OVERRIDES = [f"{domain}={good.address}"]
        assert tls.domain_can_receive_verified_tls(domain).verified
    with smtp_server() as plain:
        settings.LUXMAIL_MX_OVERRIDES = [f"{domain}={plain.address}"]
        patient = make_patient(f"flaky.{uuid.uuid4().hex[:6]}@{domain}", actor=admin)
        campaign = phi_campaign([patient], actor=admin)
        start_and_drain(campaign, actor=admin)
        message = Message.objects.get(campaign=campaign)
        assert message.state == MessageState.DEFERRED and message.channel == "tls"
        assert plain.messages == []  # refused before MAIL FROM: nothing went in clear
        Message.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())
        delivery.send_batch(campaign_id=campaign.pk)
        message.refresh_from_db()
        assert (message.state, message.channel) == (MessageState.SENT, "portal")
        [notice] = plain.messages
        assert contains_any(notice.data, phi_values(patient)) == []
    tls.capability_forget(domain)


def test_unreachable_domain_is_deferred_not_sent_to_the_portal(postgres, sink, admin, settings):
    from luxmail.testing import free_port

    domain = f"down-{uuid.uuid4().hex[:8]}.test"
    settings.LUXMAIL_MX_OVERRIDES = [f"{domain}=127.0.0.1:{free_port()}"]  # nobody listens
    org.org_settings_update(actor=admin, delivery_mode=DeliveryMode.DIRECT)
    tls.capability_forget(domain)
    patient = make_patient(f"down.{uuid.uuid4().hex[:6]}@{domain}", actor=admin)
    campaign = phi_campaign([patient], actor=admin)
    start_and_drain(campaign, actor=admin)
    message = Message.objects.get(campaign=campaign)
    assert message.state == MessageState.DEFERRED and message.next_attempt_at is not None
    assert "could not be assessed" in message.channel_reason
    assert not PortalMessage.objects.filter(message=message).exists()
    tls.capability_forget(domain)
