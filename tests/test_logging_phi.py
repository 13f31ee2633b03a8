"""No PHI in logs: every log record, at DEBUG, while the real application handles PHI.

Nothing here is a toy view: the test drives LuxMail's own code paths with patients
whose PHI is made of unique random markers (names, e-mail, ICD-10 code, medication,
provider, dates), then scans every record every logger produced — root, ``django``
(``django.request``, ``django.security``, ``django.db.backends`` with SQL logging on),
``celery`` and the apps — message, arguments, exception and stack text:

* a CSV contact import through the import service and its (eager) Celery tasks;
* a PHI campaign sent through the send pipeline to a real aiosmtpd relay;
* the recipients' portal: code, read, reply — and staff reading the reply;
* error pages: 404, 403, 400 (hostile ``Host``) and the 500 of a tampered PHI value;
* an API call whose PHI body fails validation.

The records are captured before ``luxmail.logging.RedactPHIFilter`` runs (it sits on
the console handler), so the test proves the code does not log PHI, not that the
filter hides it. aiosmtpd's own ``mail.log`` is the test relay's server log, not
LuxMail's, and stays at its configured level.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import secrets
import string
import uuid
from collections.abc import Iterator

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from campaigns.models import Message
from campaigns.tests.conftest import admin, postgres, sink  # noqa: F401
from contacts import selectors as contact_selectors
from contacts import services as contact_services
from contacts.imports import services as imports
from contacts.models import Contact, ContactProfile, ImportJobStatus
from luxmail import crypto, roles
from luxmail.api import services as api_services
from luxmail.testing import verify_session
from portal.models import PortalReply
from portal.tests.helpers import parse, phi_campaign, portal_link, start_and_drain

pytestmark = [pytest.mark.postgres, pytest.mark.smtp, pytest.mark.django_db]

LOGGERS = [
    "",  # root
    "django",
    "django.request",
    "django.server",
    "django.security",
    "django.db.backends",
    "django.template",
    "celery",
    "celery.app.trace",
    "celery.task",
    "celery.worker",
    "luxmail",
    "contacts",
    "campaigns",
    "portal",
    "reporting",
]


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def every_record() -> Iterator[list[logging.LogRecord]]:
    """Every record of every logger at DEBUG (SQL logging on), unfiltered."""
    handler = Collect()
    saved = []
    for name in LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level, logger.disabled))
        logger.setLevel(logging.DEBUG)
        logger.disabled = False
        logger.addHandler(handler)
    try:
        with CaptureQueriesContext(connection):  # turns on django.db.backends logging
            yield handler.records
    finally:
        for logger, level, disabled in saved:
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.disabled = disabled


def record_text(records: list[logging.LogRecord]) -> str:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    parts = []
    for record in records:
        parts.append(formatter.format(record))  # message, exc_info and stack_info
        parts.append(repr(record.args))
        parts.append(record.exc_text or "")
        parts.extend(repr(v) for k, v in vars(record).items() if k not in _STANDARD)
    return "\n".join(parts)


_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def marker(prefix: str) -> str:
    return prefix + "".join(random.choices(string.ascii_lowercase, k=10))


class Patient:
    """PHI made of markers no log line could contain by chance."""

    def __init__(self) -> None:
        self.first = marker("Ysolde").capitalize()
        self.last = marker("Quarrington").capitalize()
        self.local = marker("pt")
        self.email = f"{self.local}@example.test"
        self.condition = "Q{}{}.{}".format(
            random.randint(0, 9), random.choice("ABCDEFGHJK"), secrets.token_hex(2).upper()
        )
        self.medication = marker("Zorbitrex")
        self.provider = "Dr. " + marker("Vandermolen").capitalize()
        self.birth = dt.date(1920, 1, 1) + dt.timedelta(days=random.randint(0, 29000))
        self.appointment = dt.date(2031, 1, 1) + dt.timedelta(days=random.randint(0, 3000))

    def markers(self) -> list[str]:
        return [
            self.first,
            self.last,
            self.local,
            self.condition,
            self.medication,
            self.provider.removeprefix("Dr. "),
            self.birth.isoformat(),
            self.birth.strftime("%m/%d/%Y"),
            self.appointment.isoformat(),
        ]

    def data(self) -> dict[str, object]:
        return {
            "email": self.email,
            "first_name": self.first,
            "last_name": self.last,
            "birth_date": self.birth.isoformat(),
            "conditions": [self.condition],
            "medications": [self.medication],
            "primary_provider": self.provider,
            "next_appointment": self.appointment.isoformat(),
        }


def run_import(actor, patient: Patient, capture) -> Contact:
    csv = (
        "E-mail,First Name,Last Name,DOB,Diagnoses,Medications,Primary provider,"
        "Marketing consent,PHI marketing consent\n"
        f"{patient.email},{patient.first},{patient.last},"
        f"{patient.birth.strftime('%m/%d/%Y')},{patient.condition},{patient.medication},"
        f"{patient.provider},yes,yes\n"
        # A row the import refuses: its PHI must not reach the logs either.
        f"not-an-address-{patient.local},{patient.first},{patient.last},"
        f"31/31/{patient.birth.year},{patient.condition}x,,,yes,\n"
    )
    with capture(execute=True):  # the reading task runs on commit
        job = imports.import_job_create(
            uploaded=SimpleUploadedFile("patients.csv", csv.encode()), actor=actor
        )
    job.refresh_from_db()
    with capture(execute=True):
        imports.import_job_map(job=job, mapping=job.mapping, actor=actor)
    job.refresh_from_db()
    assert job.status == ImportJobStatus.PREVIEWED, job.failure
    assert job.preview["create"] == 1
    with capture(execute=True):
        imports.import_job_confirm(job=job, actor=actor, skip_invalid=True)
    job.refresh_from_db()
    assert job.status == ImportJobStatus.SUCCEEDED, job.failure
    contact = contact_selectors.contact_by_email(email=patient.email)
    assert contact is not None
    values = contact_selectors.contact_phi(contact=contact, actor=actor)
    assert values["medications"] == [patient.medication]
    assert values["birth_date"] == patient.birth
    return contact


def test_real_code_paths_log_no_phi(
    every_record,
    admin,  # noqa: F811 (the campaigns fixture imported above)
    sink,  # noqa: F811
    make_user,
    settings,
    tmp_path,
    django_capture_on_commit_callbacks,
):
    settings.LUXMAIL_IMPORT_DIR = tmp_path / "imports"
    settings.DEBUG_PROPAGATE_EXCEPTIONS = False
    imported, sent = Patient(), Patient()

    # 1. A CSV import through the import service and its Celery tasks.
    run_import(admin, imported, django_capture_on_commit_callbacks)

    # 2. A PHI campaign through the send pipeline to the aiosmtpd relay (portal only).
    contact = contact_services.contact_create(data=sent.data(), actor=admin)
    for purpose in ("marketing", "phi_marketing"):
        contact_services.consent_grant(
            contact=contact, purpose=purpose, source="web_form", actor=admin
        )
    campaign = phi_campaign([contact], actor=admin, policy="portal_only")
    start_and_drain(campaign, actor=admin)
    message = Message.objects.get(campaign=campaign)
    assert message.state == "sent", message.failure_reason
    path = "/" + portal_link(sink.messages[-1].data).split("/", 3)[3]

    # 3. The portal: code, read (PHI on the page), reply with PHI in it.
    patient = Client()
    assert patient.post(path + "code/").status_code == 302
    code_mail = parse(sink.messages[-1].data).get_body(("plain",))
    assert code_mail is not None
    code = next(w for w in code_mail.get_content().split() if w.isdigit() and len(w) == 6)
    assert patient.post(path + "verify/", {"code": code}).status_code == 302
    page = patient.get(path + "read/")
    assert page.status_code == 200 and sent.provider in page.content.decode()
    reply_text = f"{sent.first} here: {sent.medication} ran out before {sent.appointment}"
    assert patient.post(path + "reply/", {"body": reply_text}).status_code == 302
    reply = PortalReply.objects.get()
    staff = Client(raise_request_exception=False)
    verify_session(staff, admin)
    shown = staff.get(f"/secure-messages/replies/{reply.uuid}/")
    assert shown.status_code == 200 and sent.medication in shown.content.decode()

    # 4. Error pages: 404, 403, 400 and the 500 of a tampered PHI value.
    assert staff.get(f"/contacts/{uuid.uuid4()}/").status_code == 404
    marketer = Client(raise_request_exception=False)
    verify_session(marketer, make_user(roles.MARKETER))
    assert marketer.get(f"/secure-messages/replies/{reply.uuid}/").status_code == 403
    assert Client().get("/", HTTP_HOST="evil.example.invalid").status_code == 400
    profile = ContactProfile.objects.get(contact=contact)
    tampered = bytearray(profile.medications)
    tampered[-1] ^= 0x01
    ContactProfile.objects.filter(pk=profile.pk).update(medications=bytes(tampered))
    broken = staff.post(f"/contacts/{contact.uuid}/phi/")
    assert broken.status_code == 500
    assert sent.first not in broken.content.decode()

    # 5. An API call with PHI in a body that fails validation.
    issued = api_services.api_key_create(
        name="integration", scopes=["contacts:write", "phi:write"], actor=admin
    )
    api = Client(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    body = {**sent.data(), "email": f"{sent.local}@", "birth_date": f"{sent.birth}T99"}
    rejected = api.post("/api/v1/contacts/", json.dumps(body), content_type="application/json")
    assert rejected.status_code == 400

    text = record_text(every_record)
    # The capture is real: every path left records, the error paths included.
    names = {r.name for r in every_record}
    assert {"django.db.backends", "django.request", "django.security.DisallowedHost"} <= names
    assert "Not Found: /contacts/" in text
    assert any(
        r.name == "django.request" and r.status_code == 403  # type: ignore[attr-defined]
        for r in every_record
    )
    assert "Internal Server Error: /contacts/" in text and "DecryptionError" in text
    assert "Bad Request: /api/v1/contacts/" in text
    assert "contacts_importjob" in text and "campaigns_message" in text
    # The reply is written through the ORM: its SQL log line binds the envelope (bytes).
    reply_inserts = [
        r.getMessage()
        for r in every_record
        if r.name == "django.db.backends" and 'INSERT INTO "portal_portalreply"' in r.getMessage()
    ]
    assert reply_inserts and "\\x01" in reply_inserts[0], reply_inserts[:1]
    for patient_ in (imported, sent):
        for value in patient_.markers():
            assert value not in text, f"PHI marker {value!r} appeared in the logs"
    assert settings.LUXMAIL_ENCRYPTION_KEYS.split(":")[1].split(",")[0] not in text


def test_contact_writes_log_no_phi_and_store_envelopes(every_record, admin):  # noqa: F811
    """Contacts are written with COPY (no SQL log line carries their values); what the
    database holds for each PHI column is an envelope, never the plaintext."""
    patient = Patient()
    contact = contact_services.contact_create(data=patient.data(), actor=admin)
    contact_services.contact_update(
        contact=contact, data={"medications": [patient.medication, "aspirin"]}, actor=admin
    )
    text = record_text(every_record)
    assert "contacts.create" in text or "luxmail_auditevent" in text  # the capture is live
    for value in patient.markers():
        assert value not in text, f"PHI marker {value!r} appeared in the logs"
    profile = ContactProfile.objects.get(contact=contact)
    for field in ("birth_date", "conditions", "medications", "primary_provider"):
        raw = getattr(profile, field)
        assert isinstance(raw, bytes) and raw[0] == crypto.ENVELOPE_VERSION
        assert patient.medication.encode() not in raw
