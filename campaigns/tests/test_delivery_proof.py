"""Delivery proof (issue 17 §2): the session's TLS details are recorded per message,
against a real aiosmtpd relay that requires STARTTLS, and shown on the message page
and in the delivery export."""

from __future__ import annotations

import hashlib
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.utils import timezone

from campaigns import services
from campaigns.models import DeliveryProof, Message, MessageState
from campaigns.sending import delivery
from campaigns.tests.factories import make_campaign, make_contacts
from campaigns.tests.test_channels_mx import mx_servers  # noqa: F401  (fixture)

pytestmark = [pytest.mark.postgres, pytest.mark.smtp, pytest.mark.django_db]


def _fingerprint(cert_path) -> str:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def test_verified_starttls_session_is_recorded_per_message(
    postgres, untrusted_tls_sink, settings, admin, staff_client
) -> None:
    # Trust the relay's certificate: a verified STARTTLS session.
    settings.LUXMAIL_SMTP_CA_FILE = str(untrusted_tls_sink.cert_path)
    ids = make_contacts(3)
    campaign = make_campaign(contact_ids=ids, actor=admin)
    services.campaign_start(campaign=campaign, actor=admin)
    delivery.send_batch(campaign_id=campaign.pk, limit=50)
    assert set(Message.objects.values_list("state", flat=True)) == {MessageState.SENT}
    proofs = list(DeliveryProof.objects.filter(message__campaign=campaign))
    assert len(proofs) == 3
    expected = _fingerprint(untrusted_tls_sink.cert_path)
    for proof in proofs:
        assert proof.host == "localhost" and proof.port == untrusted_tls_sink.port
        assert proof.route == "relay"
        assert proof.tls_version.startswith("TLSv1.")
        assert proof.tls_cipher
        assert proof.peer_cert_sha256 == expected
        assert proof.cert_verified is True
        assert proof.secured_at is not None and proof.replied_at >= proof.secured_at

    message = Message.objects.filter(campaign=campaign).first()
    client = staff_client("Viewer")
    page = client.get(f"/campaigns/messages/{message.pk}/").content.decode()
    assert expected in page
    assert "yes: chain and host name checked" in page
    assert message.channel_reason in page
    assert "250" in page

    campaign_page = client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert f'href="/campaigns/messages/{message.pk}/"' in campaign_page
    assert "verified" in campaign_page

    export = client.get(f"/campaigns/{campaign.pk}/delivery.csv")
    body = b"".join(export.streaming_content).decode()
    header, *rows = body.strip().splitlines()
    assert "peer_cert_sha256" in header and "tls_version" in header
    assert len(rows) == 3 and all(expected in row for row in rows)


def test_plaintext_session_records_no_tls(postgres, sink, admin) -> None:
    ids = make_contacts(1)
    campaign = make_campaign(contact_ids=ids, actor=admin)
    services.campaign_start(campaign=campaign, actor=admin)
    delivery.send_batch(campaign_id=campaign.pk, limit=50)
    proof = DeliveryProof.objects.get(message__campaign=campaign)
    assert proof.tls_version == "" and proof.peer_cert_sha256 == ""
    assert proof.cert_verified is False
    assert proof.host == "127.0.0.1"


def test_proofs_written_by_the_chunk_step_statement(postgres, sink, admin, settings) -> None:
    """With one message per chunk, every proof but the last is written by the next
    chunk's step statement (queue._STEP_WITH_PROOFS_SQL), the last by write_results;
    a proof already on file (an earlier try) is replaced, not duplicated."""
    settings.LUXMAIL_SEND_CHUNK = 1
    ids = make_contacts(3)
    campaign = make_campaign(contact_ids=ids, actor=admin)
    services.campaign_start(campaign=campaign, actor=admin)
    first = Message.objects.filter(campaign=campaign).order_by("id").first()
    DeliveryProof.objects.create(
        message=first, host="old.example", port=2525, route="direct", replied_at=timezone.now()
    )
    delivery.send_batch(campaign_id=campaign.pk, limit=50)
    assert set(Message.objects.filter(campaign=campaign).values_list("state", flat=True)) == {
        MessageState.SENT
    }
    proofs = list(DeliveryProof.objects.filter(message__campaign=campaign))
    assert len(proofs) == 3
    for proof in proofs:
        assert (proof.host, proof.route, proof.tls_version) == ("127.0.0.1", "relay", "")
        assert proof.port == settings.LUXMAIL_SMTP_PORT and proof.dane == ""


def test_tls_session_reads_the_socket(untrusted_tls_sink) -> None:
    from campaigns.sending.transport import Connection, RelayConfig

    ca = str(untrusted_tls_sink.cert_path)
    config = RelayConfig("localhost", untrusted_tls_sink.port, "starttls", ca_file=ca)
    connection = Connection(config)
    try:
        session = connection.session
        sock = connection.smtp.sock
        assert isinstance(sock, ssl.SSLSocket)
        assert session.version == sock.version()
        assert session.cipher == sock.cipher()[0]
        assert session.verified
    finally:
        connection.close()


def test_direct_delivery_records_each_mx_session(
    postgres,
    sink,
    admin,
    mx_servers,  # noqa: F811  (the fixture imported above)
) -> None:
    """Direct to MX: the verified session, the opportunistic (unverified) one and the
    plaintext one are told apart in the proof."""
    import uuid

    from luxmail import org
    from luxmail.models import DeliveryMode
    from portal.tests.helpers import make_patient, phi_campaign, start_and_drain

    domains, _servers = mx_servers
    org.org_settings_update(actor=admin, delivery_mode=DeliveryMode.DIRECT)
    patients = {
        name: make_patient(f"patient.{uuid.uuid4().hex[:6]}@{domain}", actor=admin)
        for name, domain in domains.items()
    }
    campaign = phi_campaign(list(patients.values()), actor=admin, policy="tls_or_better")
    start_and_drain(campaign, actor=admin)
    proof = {
        name: DeliveryProof.objects.get(message__campaign=campaign, message__contact=patient)
        for name, patient in patients.items()
    }
    assert all(p.route == "direct" for p in proof.values())
    assert proof["tls"].cert_verified and proof["tls"].tls_version.startswith("TLS")
    assert proof["untrusted"].tls_version and not proof["untrusted"].cert_verified
    assert proof["plain"].tls_version == "" and not proof["plain"].cert_verified
