"""The dev Outbox: only in the dev mode, only for verified PHI-permitted staff, and it
shows what the real SMTP sink stored (headers, text, sandboxed HTML, secure parts)."""

import smtplib
import time
from email.message import EmailMessage
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from django.urls import reverse

from luxmail.management.commands.run_smtp_sink import EmlWriter
from luxmail.models import AuditEvent
from luxmail.testing import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def outbox(settings, tmp_path):
    settings.LUXMAIL_DEV_OUTBOX = True
    settings.LUXMAIL_SINK_DIR = tmp_path
    return tmp_path


def _mail(subject="Your visit", html=True, attachment=False):
    message = EmailMessage()
    message["From"] = "Clinic <news@clinic.example>"
    message["To"] = "pat.example@patients.example"
    message["Subject"] = subject
    message["Date"] = "Tue, 03 Nov 2026 10:00:00 +0000"
    message.set_content("Plain text body line")
    if html:
        message.add_alternative(
            '<p style="color: #123">HTML <b>body</b></p><script>alert("x")</script>',
            subtype="html",
        )
    if attachment:
        message.add_attachment(
            b"%PDF-1.4 test", maintype="application", subtype="pdf", filename="results.pdf"
        )
    return message


def _store(directory: Path, message, *, rcpts=("pat.example@patients.example",)) -> str:
    path = EmlWriter(directory).store(
        mail_from="bounces@clinic.example", rcpt_tos=list(rcpts), content=bytes(message)
    )
    return path.name


def test_outbox_is_404_unless_the_dev_mode_enables_it(settings, staff_client, tmp_path):
    settings.LUXMAIL_SINK_DIR = tmp_path
    assert settings.LUXMAIL_DEV_OUTBOX is False  # the test mode, like production
    client = staff_client("Admin")
    assert client.get("/dev/outbox/").status_code == 404
    name = _store(tmp_path, _mail())
    assert client.get(f"/dev/outbox/{name}/").status_code == 404
    assert client.get(f"/dev/outbox/{name}/html/").status_code == 404


def test_outbox_needs_a_verified_session_with_phi_access(outbox, client, make_user, staff_client):
    _store(outbox, _mail())
    anonymous = client.get("/dev/outbox/")
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(reverse("accounts:login"))

    # Password only: the MFA gate applies (the outbox is no longer a public path).
    user = make_user("Admin")
    client.force_login(user)
    unverified = client.get("/dev/outbox/")
    assert unverified.status_code == 302
    assert unverified["Location"].startswith(reverse("accounts:mfa_verify"))

    assert staff_client("Marketer").get("/dev/outbox/").status_code == 403
    assert staff_client("Viewer").get("/dev/outbox/").status_code == 403
    assert staff_client("PHI Marketer").get("/dev/outbox/").status_code == 200
    assert staff_client("Admin").get("/dev/outbox/").status_code == 200


def test_list_shows_newest_first_with_from_to_subject_date_size(outbox, staff_client):
    older = _store(outbox, _mail("Older message"))
    time.sleep(0.01)  # distinct modification times
    newer = _store(outbox, _mail("Newer message"))
    client = staff_client("Admin")
    body = client.get("/dev/outbox/").content.decode()
    assert body.index("Newer message") < body.index("Older message")
    assert "news@clinic.example" in body
    assert "pat.example@patients.example" in body
    assert "2026-11-03 10:00:00" in body
    assert reverse("dev_outbox_message", args=[newer]) in body
    assert reverse("dev_outbox_message", args=[older]) in body
    assert AuditEvent.objects.filter(action="dev.outbox_list", phi=True).exists()


def test_message_page_shows_headers_text_sandboxed_html_and_attachments(outbox, staff_client):
    name = _store(outbox, _mail(attachment=True), rcpts=["a@x.example", "hidden-bcc@x.example"])
    client = staff_client("Admin")
    response = client.get(reverse("dev_outbox_message", args=[name]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "Plain text body line" in body
    assert "X-Envelope-To" in body and "hidden-bcc@x.example" in body
    # The HTML part is never inlined into the page; it loads in a sandboxed iframe.
    assert "<script>alert" not in body
    assert f'sandbox src="{reverse("dev_outbox_html", args=[name])}"' in body
    assert "results.pdf" in body and "application/pdf" in body
    assert AuditEvent.objects.filter(
        action="dev.outbox_read", phi=True, details__file=name
    ).exists()

    html = client.get(reverse("dev_outbox_html", args=[name]))
    assert html.status_code == 200
    assert "<b>body</b>" in html.content.decode()
    policy = html["Content-Security-Policy"]
    assert "sandbox" in policy
    assert "default-src 'none'" in policy
    assert "script-src" not in policy  # falls back to default-src 'none': no scripts
    assert "frame-ancestors 'self'" in policy
    assert html["X-Frame-Options"] == "SAMEORIGIN"


def test_attachment_downloads_as_an_attachment(outbox, staff_client):
    name = _store(outbox, _mail(attachment=True))
    client = staff_client("Admin")
    page = client.get(reverse("dev_outbox_message", args=[name])).content.decode()
    index = int(page.split("/parts/")[1].split("/")[0])
    response = client.get(reverse("dev_outbox_part", args=[name, index]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == 'attachment; filename="results.pdf"'
    assert response.content == b"%PDF-1.4 test"
    assert client.get(reverse("dev_outbox_part", args=[name, 99])).status_code == 404


def test_pgp_and_smime_messages_are_shown_as_such(outbox, staff_client):
    pgp = MIMEMultipart("encrypted", protocol="application/pgp-encrypted")
    pgp["From"], pgp["To"], pgp["Subject"] = "a@clinic.example", "b@x.example", "Encrypted"
    version = MIMEApplication(b"Version: 1\n", "pgp-encrypted")
    armored = MIMEApplication(
        b"-----BEGIN PGP MESSAGE-----\n\nhQEMA\n-----END PGP MESSAGE-----\n", "octet-stream"
    )
    armored.add_header("Content-Disposition", "inline", filename="encrypted.asc")
    pgp.attach(version)
    pgp.attach(armored)
    smime = MIMEApplication(b"\x30\x80fake-der", "pkcs7-mime", smime_type="enveloped-data")
    smime.add_header("Content-Disposition", "attachment", filename="smime.p7m")
    smime["From"], smime["To"], smime["Subject"] = "a@clinic.example", "c@x.example", "S/MIME"
    client = staff_client("Admin")

    body = client.get(reverse("dev_outbox_message", args=[_store(outbox, pgp)])).content.decode()
    assert "PGP/MIME encrypted (RFC 3156)" in body
    assert "PGP/MIME version part" in body
    assert "The body is encrypted for the recipient" in body

    body = client.get(reverse("dev_outbox_message", args=[_store(outbox, smime)])).content.decode()
    assert "S/MIME encrypted (RFC 8551)" in body
    assert "smime.p7m" in body


@pytest.mark.parametrize("name", ["..%2F..%2Fetc%2Fpasswd", ".hidden.eml", "x.txt", "a%00.eml"])
def test_names_outside_the_sink_are_refused(outbox, staff_client, name):
    (outbox.parent / "secret.eml").write_bytes(b"Subject: secret\n\nnope")
    client = staff_client("Admin")
    assert client.get(f"/dev/outbox/{name}/").status_code == 404
    assert client.get("/dev/outbox/..%2Fsecret.eml/").status_code == 404


def test_clear_deletes_every_message(outbox, staff_client):
    for index in range(3):
        _store(outbox, _mail(f"Message {index}"))
    client = staff_client("Admin")
    assert client.get(reverse("dev_outbox_clear")).status_code == 405
    response = client.post(reverse("dev_outbox_clear"))
    assert response.status_code == 302
    assert list(outbox.glob("*.eml")) == []
    assert AuditEvent.objects.filter(action="dev.outbox_clear", details__deleted=3).exists()


@pytest.mark.smtp
def test_the_real_sink_stores_what_smtplib_sends_and_the_outbox_lists_it(outbox, staff_client):
    port = free_port()
    controller = Controller(EmlWriter(outbox), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.send_message(_mail("Through the sink"), to_addrs=["one@x.example"])
    finally:
        controller.stop()
    stored = list(outbox.glob("*.eml"))
    assert len(stored) == 1
    raw = stored[0].read_bytes()
    assert raw.startswith(b"X-Envelope-From: <news@clinic.example>")
    assert b"X-Envelope-To: <one@x.example>" in raw
    assert not list(outbox.glob(".*.part"))
    body = staff_client("Admin").get("/dev/outbox/").content.decode()
    assert "Through the sink" in body


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_outbox_in_a_browser_styles_the_html_but_never_runs_its_script(
    browser_page, make_user, settings, tmp_path
):

    from luxmail.testing import screenshot, sign_in

    settings.LUXMAIL_DEV_OUTBOX = True
    settings.LUXMAIL_SINK_DIR = tmp_path
    message = _mail("Sandbox check", html=False)
    message.add_alternative(
        '<p id="mark" style="color: rgb(1, 2, 3)">Styled body</p>'
        "<script>document.getElementById('mark').textContent = 'script ran';</script>",
        subtype="html",
    )
    _store(tmp_path, message)
    user = make_user("Admin")
    page = browser_page
    csp_errors = []
    page.on(
        "console",
        lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None,
    )
    sign_in(page, user, "/dev/outbox/")
    screenshot(page, "outbox-01-list")

    page.click("text=Sandbox check")
    page.wait_for_selector("text=Plain text body line")
    mark = page.frame_locator("iframe.outbox-frame").locator("#mark")
    mark.wait_for()
    assert mark.inner_text() == "Styled body"  # the script did not run
    assert mark.evaluate("el => getComputedStyle(el).color") == "rgb(1, 2, 3)"
    screenshot(page, "outbox-02-message")
    # The only CSP report allowed is the sandbox blocking the mail's own script.
    assert all("script" in error.lower() for error in csp_errors), csp_errors
