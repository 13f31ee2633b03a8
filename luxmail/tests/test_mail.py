"""Django's own mail goes through the configured relay, and TLS is never skipped."""

import smtplib

import pytest
from aiosmtpd.controller import Controller
from django.core import mail

from luxmail.management.commands.run_smtp_sink import EmlWriter
from luxmail.testing import free_port

pytestmark = pytest.mark.smtp


@pytest.fixture
def sink(tmp_path):
    port = free_port()
    controller = Controller(EmlWriter(tmp_path), hostname="127.0.0.1", port=port)
    controller.start()
    yield port, tmp_path
    controller.stop()


def test_notices_reach_the_relay(settings, sink):
    port, directory = sink
    settings.EMAIL_BACKEND = "luxmail.mail.RelayEmailBackend"
    settings.LUXMAIL_SMTP_HOST, settings.LUXMAIL_SMTP_PORT = "127.0.0.1", port
    settings.LUXMAIL_SMTP_SECURITY = "none"
    sent = mail.send_mail("Notice", "Body text", "luxmail@clinic.example", ["ops@clinic.example"])
    assert sent == 1
    (stored,) = directory.glob("*.eml")
    raw = stored.read_bytes()
    assert b"X-Envelope-To: <ops@clinic.example>" in raw and b"Subject: Notice" in raw


def test_starttls_required_but_not_offered_is_refused(settings, sink):
    port, directory = sink
    settings.EMAIL_BACKEND = "luxmail.mail.RelayEmailBackend"
    settings.LUXMAIL_SMTP_HOST, settings.LUXMAIL_SMTP_PORT = "127.0.0.1", port
    settings.LUXMAIL_SMTP_SECURITY = "starttls"
    with pytest.raises(smtplib.SMTPNotSupportedError):
        mail.send_mail("Notice", "Body", "luxmail@clinic.example", ["ops@clinic.example"])
    assert list(directory.glob("*.eml")) == []
