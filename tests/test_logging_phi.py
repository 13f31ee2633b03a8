"""No PHI in logs: every log record, at DEBUG, across requests that handle PHI.

The views below (this module doubles as the URLconf) do what real LuxMail views do
with PHI — take it in a POST, encrypt it, read it back through an audited
``phi_access``, show it — plus the failure paths: a 500 raised after PHI was
decrypted, a tampered value, a rejected form. Every record of every logger is
captured (root, ``django.request``, ``django.db.backends`` with SQL logging on), with
the exception text formatted, and none may contain a PHI value. The SQL log shows the
encrypted columns as bytes, never as plaintext.

Contacts (issue 3) will replace ``tests.testapp.Vault`` here once they exist.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid

import pytest
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import include, path
from django.views.decorators.http import require_POST

from luxmail import crypto
from luxmail.testing import verify_session
from tests.testapp.models import Vault

logger = logging.getLogger("tests.phi_views")

NOTE = "Zebulon Quixote-Marlowe, stage 2 hypertension"
EMAIL = "zebulon.quixote@patients.example"
PHONE = "+1 555 0199 7312"
MRN = "MRN-88417-QX"
BORN = dt.date(1957, 3, 14)
PHI_VALUES = [NOTE, "Quixote-Marlowe", "hypertension", EMAIL, PHONE, MRN, BORN.isoformat()]


# --- views (this module is the URLconf of these tests) -----------------------------------


@require_POST
def vault_create(request: HttpRequest) -> HttpResponse:
    try:
        born = dt.date.fromisoformat(request.POST.get("born", ""))
    except ValueError:
        logger.info("vault form rejected: invalid born field")
        return HttpResponseBadRequest("Invalid date of birth.")
    vault = Vault(uuid=uuid.uuid4())
    crypto.seal(vault, "note", request.POST["note"])
    crypto.seal(vault, "data", {"email": request.POST["email"], "phone": request.POST["phone"]})
    crypto.seal(vault, "born", born)
    vault.save()
    logger.info("vault %s created by user %s", vault.pk, request.user.pk)
    return JsonResponse({"id": vault.pk}, status=201)


def _reveal(request: HttpRequest, pk: int) -> tuple[Vault, dict]:
    vault = get_object_or_404(Vault, pk=pk)
    access = crypto.phi_access(
        actor=request.user, purpose="test.view", target=vault, request=request
    )
    values = crypto.reveal_many(vault, ["note", "data", "born"], access=access)
    logger.debug("vault %s revealed for purpose %s", vault.pk, access.purpose)
    return vault, values


def vault_show(request: HttpRequest, pk: int) -> HttpResponse:
    _, values = _reveal(request, pk)
    return HttpResponse(
        f"{values['note']} {values['data']['email']} {values['data']['phone']} {values['born']}"
    )


class RenderFailed(Exception):
    """Raised by the failing view; like every LuxMail exception, it carries ids only."""


def vault_fail(request: HttpRequest, pk: int) -> HttpResponse:
    vault, values = _reveal(request, pk)
    summary = f"{values['note']} / {values['data']}"  # PHI in a local variable
    if summary:
        raise RenderFailed(f"rendering vault {vault.pk} failed")
    return HttpResponse(summary)


urlpatterns = [
    path("phi/vaults/", vault_create),
    path("phi/vaults/<int:pk>/", vault_show),
    path("phi/vaults/<int:pk>/fail/", vault_fail),
    path("", include("luxmail.urls")),
]


# --- the test ----------------------------------------------------------------------------


@pytest.fixture
def everything_logged(caplog):
    """Every logger at DEBUG into caplog, SQL logging on."""
    caplog.set_level(logging.DEBUG)
    for name in ("django", "django.request", "django.db.backends", "django.server", "luxmail"):
        caplog.set_level(logging.DEBUG, logger=name)
    with CaptureQueriesContext(connection) as queries:  # turns on django.db.backends logging
        yield caplog, queries


def _all_text(caplog) -> str:
    formatter = logging.Formatter()
    parts = []
    for record in caplog.records:
        parts.append(record.getMessage())
        if record.exc_info:
            parts.append(formatter.formatException(record.exc_info))
        if record.exc_text:
            parts.append(record.exc_text)
        if record.stack_info:
            parts.append(record.stack_info)
    parts.append(caplog.text)
    return "\n".join(parts)


@pytest.mark.django_db
@pytest.mark.urls("tests.test_logging_phi")
def test_requests_that_handle_phi_log_no_phi(everything_logged, make_user, settings):
    caplog, _queries = everything_logged
    settings.DEBUG_PROPAGATE_EXCEPTIONS = False
    client = Client(raise_request_exception=False)
    verify_session(client, make_user("Admin"))

    created = client.post(
        "/phi/vaults/",
        {"note": NOTE, "email": EMAIL, "phone": PHONE, "born": BORN.isoformat()},
    )
    assert created.status_code == 201
    pk = created.json()["id"]

    shown = client.get(f"/phi/vaults/{pk}/")
    assert shown.status_code == 200
    assert NOTE in shown.content.decode()  # the page shows PHI; the logs must not

    failed = client.get(f"/phi/vaults/{pk}/fail/")
    assert failed.status_code == 500
    assert NOTE not in failed.content.decode() and EMAIL not in failed.content.decode()

    rejected = client.post("/phi/vaults/", {"note": NOTE, "email": EMAIL, "born": "14/03/1957"})
    assert rejected.status_code == 400

    # A tampered value: the decryption error is logged, the PHI (and key) are not.
    vault = Vault.objects.get(pk=pk)
    tampered = bytearray(vault.note)
    tampered[-1] ^= 0x01
    Vault.objects.filter(pk=pk).update(note=bytes(tampered))
    broken = client.get(f"/phi/vaults/{pk}/")
    assert broken.status_code == 500

    text = _all_text(caplog)
    # The capture is real: the error paths, the SQL and our own records are in it.
    assert "Internal Server Error: /phi/vaults/" in text
    assert "RenderFailed: rendering vault" in text
    assert "DecryptionError" in text
    assert "Bad Request: /phi/vaults/" in text
    assert f"vault {pk} created by user" in text
    assert any(r.name == "django.db.backends" for r in caplog.records)
    for value in PHI_VALUES:
        assert value not in text, f"PHI value {value!r} appeared in the logs"
    assert "Zebulon" not in text
    assert settings.LUXMAIL_ENCRYPTION_KEYS.split(":")[1].split(",")[0] not in text


@pytest.mark.django_db
@pytest.mark.urls("tests.test_logging_phi")
def test_sql_log_holds_ciphertext_not_plaintext(everything_logged, make_user):
    caplog, queries = everything_logged
    client = Client()
    verify_session(client, make_user("Admin"))
    response = client.post(
        "/phi/vaults/",
        {"note": NOTE, "email": EMAIL, "phone": PHONE, "born": BORN.isoformat()},
    )
    assert response.status_code == 201

    table = Vault._meta.db_table
    inserts = [q["sql"] for q in queries.captured_queries if table in q["sql"]]
    assert any(sql.upper().startswith("INSERT") for sql in inserts)
    sql_records = [
        r.getMessage()
        for r in caplog.records
        if r.name == "django.db.backends" and table in r.getMessage()
    ]
    insert_logs = [m for m in sql_records if "INSERT" in m.upper()]
    assert insert_logs, "the INSERT of the encrypted row was not logged"
    for message in sql_records + inserts:
        for value in PHI_VALUES:
            assert value not in message
    # The encrypted columns are bound as bytes (the envelope's version byte first).
    assert any("x01" in m for m in insert_logs), insert_logs[0][:300]
    # And the row in the database holds envelopes, not text.
    vault = Vault.objects.get(pk=response.json()["id"])
    for field in ("note", "data", "born"):
        raw = getattr(vault, field)
        assert isinstance(raw, bytes) and raw[0] == crypto.ENVELOPE_VERSION
        assert json.dumps(PHI_VALUES).encode() not in raw
