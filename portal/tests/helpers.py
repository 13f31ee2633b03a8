"""Shared test data for secure-channel and portal tests: patients with PHI, a
PHI-bearing template, campaigns driven by hand, and real gpg/openssl helpers."""

from __future__ import annotations

import email
import email.policy
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

from campaigns import services
from campaigns.content import footer, htmlmail
from campaigns.content.context import recipients as load_recipients
from campaigns.models import Campaign, Message
from campaigns.sending import delivery
from campaigns.tests.factories import approve_for_test, make_list, make_sender
from contacts import services as contact_services
from contacts.models import Contact
from luxmail import crypto
from luxmail.actors import Actor

PHI_SUBJECT = "Your follow-up with {{ phi.primary_provider }}"
PHI_HTML = (
    "<html><body><p>Dear {{ contact.first_name }} {{ contact.last_name }},</p>"
    "<p>Your follow-up for {{ phi.conditions[0] }} with {{ phi.primary_provider }} is due "
    "on {{ phi.next_appointment }}.</p>"
    '<p><a href="https://clinic.example/book">Book online</a></p>'
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p></body></html>'
)


def make_patient(
    address: str,
    *,
    actor: Actor,
    first_name: str = "Rosalind",
    last_name: str = "Quenneville",
    provider: str = "Dr. Octavia Marsh",
    condition: str = "E11.9",
    birth_date: str = "1961-04-09",
    next_appointment: str = "2031-03-14",
) -> Contact:
    contact = contact_services.contact_create(
        data={
            "email": address,
            "first_name": first_name,
            "last_name": last_name,
            "birth_date": birth_date,
            "primary_provider": provider,
            "conditions": [condition],
            "next_appointment": next_appointment,
        },
        actor=actor,
    )
    for purpose in ("marketing", "phi_marketing"):
        contact_services.consent_grant(
            contact=contact, purpose=purpose, source="web_form", actor=actor
        )
    return contact


def phi_values(contact: Contact) -> list[str]:
    """The contact's PHI as it could appear in a message (for scanning what was sent)."""
    from contacts.models import ContactProfile

    access = crypto.phi_access(actor=None, purpose="test.scan")
    profile = ContactProfile.objects.get(contact=contact)
    values = [
        crypto.reveal(contact, "first_name", access=access),
        crypto.reveal(contact, "last_name", access=access),
        crypto.reveal(profile, "primary_provider", access=access),
        crypto.reveal(profile, "birth_date", access=access).isoformat(),
        crypto.reveal(profile, "next_appointment", access=access).isoformat(),
        *crypto.reveal(profile, "conditions", access=access),
    ]
    return [str(v) for v in values if v]


def contains_any(data: bytes | str, needles: list[str]) -> list[str]:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    # Also look through quoted-printable soft breaks and encodings a client would undo.
    unfolded = text.replace("=\r\n", "").replace("=\n", "")
    return [n for n in needles if n in text or n in unfolded]


def phi_campaign(
    contacts: list[Contact],
    *,
    actor: Actor,
    policy: str = "tls_or_better",
    sender: Any = None,
    **fields: Any,
) -> Campaign:
    template = services.template_create(
        name=f"PHI {uuid.uuid4().hex[:8]}",
        subject=PHI_SUBJECT,
        html=footer.footer_insert(PHI_HTML),
        actor=actor,
    )
    assert template.phi_bearing
    audience = make_list(f"L {uuid.uuid4().hex[:8]}", [c.pk for c in contacts])
    campaign = services.campaign_create(
        name=f"C {uuid.uuid4().hex[:6]}",
        actor=actor,
        template=template,
        sender=sender or make_sender(actor),
        lists=[audience],
        secure_policy=policy,
        track_opens=fields.pop("track_opens", False),
        track_clicks=fields.pop("track_clicks", False),
        **fields,
    )
    approve_for_test(campaign)
    return campaign


def start_and_drain(campaign: Campaign, *, actor: Actor, rounds: int = 20) -> None:
    services.campaign_start(campaign=campaign, actor=actor)
    for _ in range(rounds):
        report = delivery.send_batch(campaign_id=campaign.pk, limit=50)
        if not report.claimed:
            break
    services.campaign_finish_if_done(campaign_id=campaign.pk)


def expected_bodies(campaign: Campaign, message: Message) -> tuple[str, str, str]:
    """What the pipeline renders for ``message`` (tracking off): subject, HTML, text."""
    campaign.refresh_from_db()
    prepared = delivery.prepare(campaign, cache=False)
    access = crypto.phi_access(actor=None, purpose="test.expected")
    assert message.contact_id is not None
    person = load_recipients([message.contact_id], fields=prepared.fields, access=access)[
        message.contact_id
    ]
    unsubscribe = delivery.unsubscribe_url(message.pk)
    rendered = prepared.compiled.render(
        {
            **person.context,
            "org": prepared.org_context,
            "unsubscribe_url": unsubscribe,
            "preferences_url": unsubscribe + "preferences/",
        }
    )
    html = rendered.html if prepared.html_prepared else htmlmail.prepare_html(rendered.html)
    return rendered.subject, html, rendered.text


def parse(data: bytes) -> email.message.EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


def bodies(entity: bytes) -> tuple[str, str]:
    """(text, html) of a decrypted multipart/alternative entity, line endings normalized."""
    message = parse(entity)
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return normalize(text.get_content()), normalize(html.get_content())


def normalize(value: str) -> str:
    return value.replace("\r\n", "\n").rstrip("\n")


LINK = re.compile(r"https?://[^\s\"'<>]+/portal/[A-Za-z0-9_-]+/")


def portal_link(data: bytes) -> str:
    message = parse(data)
    part = message.get_body(("plain",))
    assert part is not None
    found = LINK.findall(part.get_content())
    assert found, "the notice has no portal link"
    return str(found[0])


# --- real tools ----------------------------------------------------------------------------


def gpg_available() -> bool:
    return shutil.which("gpg") is not None


def openssl_available() -> bool:
    return shutil.which("openssl") is not None


class GnuPG:
    """A throw-away GnuPG home with one key pair generated by gpg itself."""

    def __init__(self, home: Path, address: str, *, algorithm: str = "future-default") -> None:
        self.home = home
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.env = {**os.environ, "GNUPGHOME": str(home)}
        self.run(
            "--passphrase",
            "",
            "--pinentry-mode",
            "loopback",
            "--quick-gen-key",
            f"Test Patient <{address}>",
            algorithm,
            "default",
            "never",
        )
        self.public_key = self.run("--armor", "--export", address).decode()

    def run(self, *args: str, data: bytes | None = None) -> bytes:
        result = subprocess.run(
            ["gpg", "--batch", "--yes", "--no-tty", *args],
            input=data,
            capture_output=True,
            env=self.env,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(f"gpg {' '.join(args[:2])} failed: {result.stderr.decode()}")
        return result.stdout

    def decrypt(self, armored: bytes) -> bytes:
        return self.run("--decrypt", data=armored)


def openssl_cms_decrypt(message: bytes, *, cert: Path, key: Path, workdir: Path) -> bytes:
    source = workdir / "smime.eml"
    source.write_bytes(message)
    result = subprocess.run(
        [
            "openssl",
            "cms",
            "-decrypt",
            "-in",
            str(source),
            "-recip",
            str(cert),
            "-inkey",
            str(key),
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"openssl cms -decrypt failed: {result.stderr.decode()}")
    return result.stdout
