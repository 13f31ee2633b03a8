"""The relay transport: delivery, reply classification, and TLS that is never downgraded."""

from __future__ import annotations

import pytest

from campaigns.sending.transport import Connection, RelayConfig, TlsRefused, verifying_context

pytestmark = pytest.mark.smtp

DATA = b"From: a@clinic.example\r\nTo: b@example.test\r\nSubject: x\r\n\r\n.dot\r\nbody\r\n"


def test_sends_and_dot_stuffs(sink) -> None:
    connection = Connection(RelayConfig("127.0.0.1", sink.port, "none"))
    outcome = connection.send("bounces+x@clinic.example", "b@example.test", DATA)
    assert outcome.kind == "sent" and outcome.code == 250
    assert sink.messages[0].data.replace(b"\r\n", b"\n") == DATA.replace(b"\r\n", b"\n")
    assert sink.messages[0].mail_from == "bounces+x@clinic.example"
    connection.close()


@pytest.mark.parametrize(
    ("reply", "kind"),
    [("451 4.3.0 try later", "transient"), ("550 5.1.1 <b@example.test> unknown", "permanent")],
)
def test_reply_classification(sink, reply: str, kind: str) -> None:
    sink.reply = reply
    connection = Connection(RelayConfig("127.0.0.1", sink.port, "none"))
    outcome = connection.send("a@clinic.example", "b@example.test", DATA)
    assert outcome.kind == kind
    assert "b@example.test" not in outcome.reply  # addresses are redacted
    # The connection stays usable after a refusal.
    sink.reply = "250 OK"
    assert connection.send("a@clinic.example", "b@example.test", DATA).kind == "sent"
    connection.close()


def test_untrusted_certificate_is_refused(untrusted_tls_sink) -> None:
    config = RelayConfig("localhost", untrusted_tls_sink.port, "starttls")
    with pytest.raises(TlsRefused) as caught:
        Connection(config)
    assert "not trusted" in str(caught.value)
    assert untrusted_tls_sink.messages == []


def test_trusted_certificate_is_used(untrusted_tls_sink) -> None:
    ca = str(untrusted_tls_sink.cert_path)
    config = RelayConfig("localhost", untrusted_tls_sink.port, "starttls", ca_file=ca)
    connection = Connection(config)
    assert connection.smtp.sock.version().startswith("TLS")  # type: ignore[union-attr]
    assert connection.send("a@clinic.example", "b@example.test", DATA).kind == "sent"
    connection.close()
    assert len(untrusted_tls_sink.messages) == 1


def test_starttls_missing_is_refused(sink) -> None:
    with pytest.raises(TlsRefused) as caught:
        Connection(RelayConfig("127.0.0.1", sink.port, "starttls"))
    assert "does not offer STARTTLS" in str(caught.value)


def test_context_verifies() -> None:
    context = verifying_context()
    assert context.check_hostname and context.verify_mode.name == "CERT_REQUIRED"
