"""The contacts UI: masking by role, audited PHI display, forms that put service errors
next to the field, consent/suppression/list management, the segment builder's live
count, and the import pages."""

from __future__ import annotations

import html
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from contacts import selectors, services
from contacts.models import (
    Consent,
    Contact,
    ContactList,
    CustomField,
    ImportJob,
    ImportJobStatus,
    ListMembership,
    Segment,
    Suppression,
)
from luxmail import roles
from luxmail.models import AuditEvent

pytestmark = pytest.mark.django_db

PATIENT = {
    "email": "maria.lopez@example.org",
    "first_name": "Maria",
    "last_name": "Lopez",
    "phone": "+16175550100",
    "birth_date": "1961-04-02",
    "conditions": "E11.9, I10",
    "zip_code": "02139",
}


@pytest.fixture
def patient(admin):
    return services.contact_create(data=PATIENT, actor=admin)


@pytest.fixture(autouse=True)
def import_dir(settings, tmp_path):
    settings.LUXMAIL_IMPORT_DIR = tmp_path / "imports"


def events(action, **filters):
    return AuditEvent.objects.filter(action=action, **filters)


def text(response):
    return response.content.decode()


# --- access and masking ---------------------------------------------------------------------


def test_viewer_reads_but_cannot_import(staff_client):
    viewer = staff_client(roles.VIEWER)
    for name in ("contacts:index", "contacts:segments", "contacts:lists", "contacts:export"):
        assert viewer.get(reverse(name)).status_code == 200, name
    assert viewer.get(reverse("contacts:import")).status_code == 403


@pytest.mark.parametrize("role", [roles.MARKETER, roles.VIEWER])
def test_marketer_and_viewer_see_masked_list_and_detail(staff_client, patient, role):
    client = staff_client(role)
    page = text(client.get(reverse("contacts:index")))
    assert "m***@example.org" in page and "M***" in page
    assert "maria.lopez" not in page and "Lopez" not in page
    assert "masked" in page and "does not include PHI access" in page
    assert events("phi.access", details__purpose="contact.masked_display").exists()
    assert not events("contact.view_phi").exists()

    detail = text(client.get(reverse("contacts:detail", args=[patient.uuid])))
    assert "m***@example.org" in detail and "Show PHI" not in detail
    assert "1961" not in detail and "E11.9" not in detail and "02139" not in detail
    assert client.post(reverse("contacts:show_phi", args=[patient.uuid])).status_code == 403
    assert not events("contact.view_phi").exists()


def test_compliance_officer_sees_masked_contacts(staff_client, patient):
    page = text(staff_client(roles.COMPLIANCE_OFFICER).get(reverse("contacts:index")))
    assert "m***@example.org" in page and "maria.lopez" not in page


def test_phi_marketer_list_shows_identity_and_is_audited(staff_client, patient):
    client = staff_client(roles.PHI_MARKETER)
    page = text(client.get(reverse("contacts:index")))
    assert "maria.lopez@example.org" in page and "Maria Lopez" in page
    event = events("contact.view_phi").get()
    assert event.details["contacts"] == [patient.pk]
    assert event.actor_id == client.user.pk


def test_phi_shown_only_after_show_phi_which_is_audited(staff_client, patient):
    client = staff_client(roles.PHI_MARKETER)
    detail = text(client.get(reverse("contacts:detail", args=[patient.uuid])))
    assert "Show PHI" in detail
    assert "1961-04-02" not in detail and "E11.9" not in detail and "maria.lopez" not in detail
    assert not events("contact.view_phi").exists()

    shown = client.post(reverse("contacts:show_phi", args=[patient.uuid]), HTTP_HX_REQUEST="true")
    body = text(shown)
    assert shown.status_code == 200 and 'id="phi-panel"' in body and "<html" not in body
    for value in ("1961-04-02", "E11.9, I10", "02139", "maria.lopez@example.org", "+16175550100"):
        assert value in body
    assert "recorded in the audit log" in body
    event = events("contact.view_phi").get()
    assert event.target_id == str(patient.uuid) and event.phi
    # Without HTMX the same action renders the whole page with the panel open.
    full = text(client.post(reverse("contacts:show_phi", args=[patient.uuid])))
    assert "<html" in full and "1961-04-02" in full
    assert events("contact.view_phi").count() == 2


def test_search_by_exact_email_posts_and_is_audited(staff_client, patient):
    client = staff_client(roles.MARKETER)
    found = client.post(reverse("contacts:index"), {"q": "  MARIA.lopez@example.org "})
    assert found.status_code == 302
    assert found["Location"] == reverse("contacts:detail", args=[patient.uuid])
    assert "maria" not in found["Location"]
    missing = client.post(reverse("contacts:index"), {"q": "nobody@example.org"})
    assert "No contact has this email address." in text(missing)
    assert [e.details["found"] for e in events("contact.search").order_by("id")] == [True, False]
    assert "nobody@example.org" not in json.dumps(
        list(AuditEvent.objects.values_list("details", flat=True))
    )


def test_filters_by_status_and_list(staff_client, admin, patient):
    other = services.contact_create(data={"email": "bo@example.org"}, actor=admin)
    services.contact_set_status(contact=other, status="unsubscribed", actor=admin)
    vip = services.contact_list_create(name="VIP", actor=admin)
    services.list_members_add(contact_list=vip, contact_ids=[patient.pk], actor=admin)
    client = staff_client(roles.MARKETER)
    assert "1 contact" in text(client.get(reverse("contacts:index"), {"status": "unsubscribed"}))
    page = text(client.get(reverse("contacts:index"), {"contact_list": vip.pk}))
    assert "1 contact" in page and "m***@example.org" in page and "b***@example.org" not in page


# --- create and edit ------------------------------------------------------------------------


def test_marketer_form_has_no_phi_fields_and_errors_sit_next_to_fields(staff_client):
    client = staff_client(roles.MARKETER)
    form = text(client.get(reverse("contacts:create")))
    assert 'name="email"' in form and 'name="birth_date"' not in form
    response = client.post(reverse("contacts:create"), {"email": "not-an-email", "phone": "12"})
    body = text(response)
    assert 'id="id_email_error"' in body and "Email: not a valid address" in body
    assert 'id="id_phone_error"' in body and "Phone: use 7 to 15 digits" in body
    assert not Contact.objects.exists()


def test_phi_marketer_creates_and_edits_a_contact(staff_client):
    client = staff_client(roles.PHI_MARKETER)
    response = client.post(
        reverse("contacts:create"),
        {
            "email": "new@example.org",
            "first_name": "Nia",
            "birth_date": "1980-05-06",
            "conditions": "e119",
        },
    )
    contact = Contact.objects.get()
    assert response["Location"] == reverse("contacts:detail", args=[contact.uuid])
    values = selectors.contact_phi(contact=contact, actor=client.user)
    assert values["conditions"] == ["E11.9"] and values["first_name"] == "Nia"

    edit_url = reverse("contacts:edit", args=[contact.uuid])
    form = text(client.get(edit_url))
    assert 'value="1980-05-06"' in form and 'value="E11.9"' in form
    assert events("phi.access", details__purpose="contact.edit").exists()
    client.post(
        edit_url,
        {
            "email": "new@example.org",
            "first_name": "Nia",
            "birth_date": "",
            "conditions": "E11.9",
            "zip_code": "02139",
        },
    )
    values = selectors.contact_phi(contact=contact, actor=client.user)
    assert values["birth_date"] is None and values["zip_code"] == "02139"
    update = events("contact.update").latest("id")
    assert update.details["fields"] == ["birth_date", "zip_code"]


def test_marketer_edit_keeps_hidden_values(staff_client, patient):
    client = staff_client(roles.MARKETER)
    url = reverse("contacts:edit", args=[patient.uuid])
    form = text(client.get(url))
    assert "maria" not in form.lower() and 'name="birth_date"' not in form
    client.post(url, {"email": "", "first_name": "", "external_id": "crm-9"})
    patient.refresh_from_db()
    values = selectors.contact_phi(contact=patient, actor=client.user)
    assert patient.external_id == "crm-9"
    assert values["email"] == "maria.lopez@example.org" and values["first_name"] == "Maria"
    assert values["birth_date"] is not None


def test_custom_fields_are_admin_only_and_phi_ones_hidden_from_marketers(staff_client):
    admin = staff_client(roles.ADMIN)
    assert staff_client(roles.MARKETER).get(reverse("contacts:fields")).status_code == 403
    admin.post(
        reverse("contacts:fields"),
        {"key": "tier", "label": "Tier", "kind": "choice", "choices": "Gold\nSilver"},
    )
    admin.post(
        reverse("contacts:fields"),
        {"key": "hba1c", "label": "HbA1c", "kind": "number", "phi": "on"},
    )
    assert list(CustomField.objects.order_by("key").values_list("key", "phi")) == [
        ("hba1c", True),
        ("tier", False),
    ]
    bad = admin.post(reverse("contacts:fields"), {"key": "9x", "label": "X", "kind": "text"})
    assert "Key: start with a letter" in text(bad)
    form = text(staff_client(roles.MARKETER).get(reverse("contacts:create")))
    assert 'name="custom.tier"' in form and 'name="custom.hba1c"' not in form


# --- consent, suppression, lists ------------------------------------------------------------


def test_consent_grant_and_revoke_keep_history(staff_client, patient):
    client = staff_client(roles.MARKETER)
    url = reverse("contacts:consent_grant", args=[patient.uuid])
    client.post(url, {"purpose": "marketing", "source": "paper", "evidence_ref": "Form 12"})
    assert selectors.consent_present(contact=patient, purpose="marketing")
    bad = client.post(url, {"purpose": "marketing", "source": "paper", "granted_on": "2999-01-01"})
    assert bad.status_code == 400 and "cannot be granted in the future" in text(bad)
    client.post(reverse("contacts:consent_revoke", args=[patient.uuid]), {"purpose": "marketing"})
    assert not selectors.consent_present(contact=patient, purpose="marketing")
    consent = Consent.objects.get()
    assert consent.revoked_at is not None and consent.revoked_by == client.user
    page = text(client.get(reverse("contacts:detail", args=[patient.uuid])))
    assert "Form 12" in page and "Signed paper form" in page


def test_suppression_needs_a_reason_and_only_admins_lift_it(staff_client, patient):
    marketer = staff_client(roles.MARKETER)
    url = reverse("contacts:suppress", args=[patient.uuid])
    missing = marketer.post(url, {"reason": "manual", "note": ""})
    assert missing.status_code == 400 and not Suppression.objects.exists()
    marketer.post(url, {"reason": "manual", "note": "Asked by phone"})
    suppression = Suppression.objects.get()
    assert selectors.is_suppressed(contact=patient)
    remove = reverse("contacts:unsuppress", args=[patient.uuid, suppression.pk])
    assert marketer.post(remove, {"note": "mistake"}).status_code == 403
    admin = staff_client(roles.ADMIN)
    assert admin.post(remove, {"note": ""}).status_code == 400
    admin.post(remove, {"note": "Entered on the wrong contact"})
    suppression.refresh_from_db()
    assert suppression.removed_at is not None and not selectors.is_suppressed(contact=patient)
    assert events("suppression.remove").exists()


def test_list_management(staff_client, admin, patient):
    client = staff_client(roles.MARKETER)
    created = client.post(reverse("contacts:lists"), {"name": "Spring", "description": "drive"})
    contact_list = ContactList.objects.get()
    assert created["Location"] == reverse("contacts:list_detail", args=[contact_list.pk])
    duplicate = client.post(reverse("contacts:lists"), {"name": "spring"})
    assert "already exists" in text(duplicate)
    client.post(reverse("contacts:list_rename", args=[contact_list.pk]), {"name": "Spring 2026"})
    contact_list.refresh_from_db()
    assert contact_list.name == "Spring 2026"
    client.post(
        reverse("contacts:list_member_add", args=[contact_list.pk]),
        {"email": "MARIA.LOPEZ@example.org"},
    )
    assert ListMembership.objects.filter(contact_list=contact_list, contact=patient).exists()
    page = text(client.get(reverse("contacts:list_detail", args=[contact_list.pk])))
    assert "1 member" in page and "m***@example.org" in page
    client.post(
        reverse("contacts:list_members_remove", args=[contact_list.pk]), {"contact": [patient.pk]}
    )
    assert not ListMembership.objects.exists()
    # Memberships from the contact page.
    client.post(
        reverse("contacts:membership_add", args=[patient.uuid]), {"contact_list": contact_list.pk}
    )
    assert ListMembership.objects.filter(contact=patient).exists()
    client.post(reverse("contacts:membership_remove", args=[patient.uuid, contact_list.pk]))
    assert not ListMembership.objects.exists()
    # Deleting a list is for Admins.
    assert client.post(reverse("contacts:list_delete", args=[contact_list.pk])).status_code == 403
    staff_client(roles.ADMIN).post(reverse("contacts:list_delete", args=[contact_list.pk]))
    assert not ContactList.objects.exists()


def test_delete_contact_is_admin_only(staff_client, patient):
    url = reverse("contacts:delete", args=[patient.uuid])
    assert staff_client(roles.MARKETER).post(url).status_code == 403
    staff_client(roles.ADMIN).post(url)
    assert not Contact.objects.exists()


# --- segments -------------------------------------------------------------------------------


RULES = {
    "all": [
        {"field": "condition", "op": "eq", "value": "E11"},
        {"field": "zip3", "op": "in", "value": ["021"]},
    ]
}


def test_builder_page_offers_fields_by_role(staff_client):
    phi_page = text(staff_client(roles.PHI_MARKETER).get(reverse("contacts:segment_new")))
    data = json.loads(
        phi_page.split('id="segment-builder-data" type="application/json">')[1].split("</script>")[
            0
        ]
    )
    fields = {f["field"]: f for f in data["fields"]}
    assert "condition" in fields and "consent" in fields and "list" in fields
    assert fields["age"]["ops"] == ["eq", "ne", "in", "not_in", "gte", "lte", "between", "exists"]
    assert "segment-builder.js" in phi_page and "<script>" not in phi_page
    plain = text(staff_client(roles.MARKETER).get(reverse("contacts:segment_new")))
    data = json.loads(
        plain.split('id="segment-builder-data" type="application/json">')[1].split("</script>")[0]
    )
    assert {f["field"] for f in data["fields"]} >= {"status", "consent", "list", "email_domain"}
    assert not any(f["phi"] for f in data["fields"])


def test_live_count_and_masked_sample_are_audited(staff_client, patient):
    client = staff_client(roles.PHI_MARKETER)
    response = client.post(reverse("contacts:segment_preview"), {"rules": json.dumps(RULES)})
    body = text(response)
    assert 'data-count="1"' in body and "m***@example.org" in body and "maria" not in body
    event = events("segment.count").get()
    assert event.details == {"segment": None, "count": 1, "conditions": 2}
    assert events("phi.access", details__purpose="contact.masked_display").exists()


def test_invalid_rules_come_back_with_their_path(staff_client):
    client = staff_client(roles.PHI_MARKETER)
    rules = {
        "all": [
            {"field": "age", "op": "gte", "value": 200},
            {"any": []},
            {"field": "age", "op": "within_last_days", "value": 3},
        ]
    }
    body = text(client.post(reverse("contacts:segment_preview"), {"rules": json.dumps(rules)}))
    raw = body.split('id="segment-problems" hidden data-problems="')[1].split('"')[0]
    problems = json.loads(html.unescape(raw))
    paths = {p["path"]: p["message"] for p in problems}
    assert "an age must be between 0 and 130" in paths["all[0]"]
    assert "empty" in paths["all[1]"]
    assert "does not apply to age" in paths["all[2]"]
    assert 'data-state="invalid"' in body
    assert not events("segment.count").exists()


def test_marketer_cannot_count_or_save_phi_segments(staff_client):
    client = staff_client(roles.MARKETER)
    body = text(client.post(reverse("contacts:segment_preview"), {"rules": json.dumps(RULES)}))
    assert "only the PHI Marketer and Admin roles" in body and not events("segment.count").exists()
    saved = client.post(
        reverse("contacts:segment_new"), {"name": "Diabetics", "rules": json.dumps(RULES)}
    )
    assert saved.status_code == 400 and not Segment.objects.exists()
    ok = client.post(
        reverse("contacts:segment_new"),
        {
            "name": "Consenting",
            "rules": json.dumps({"all": [{"field": "consent", "op": "eq", "value": "marketing"}]}),
        },
    )
    assert ok.status_code == 302 and Segment.objects.get().name == "Consenting"


def test_save_edit_and_delete_a_segment(staff_client, admin):
    client = staff_client(roles.PHI_MARKETER)
    response = client.post(
        reverse("contacts:segment_new"), {"name": "Diabetics 021", "rules": json.dumps(RULES)}
    )
    segment = Segment.objects.get()
    assert response["Location"] == reverse("contacts:segment_edit", args=[segment.pk])
    page = text(client.get(response["Location"]))
    assert "Diabetics 021" in page and "&quot;condition&quot;" in page
    bad = client.post(
        response["Location"],
        {
            "name": "Diabetics 021",
            "rules": json.dumps({"all": [{"field": "nope", "op": "eq", "value": 1}]}),
        },
    )
    assert bad.status_code == 400 and "unknown field" in text(bad)
    changed = {"any": [{"field": "condition", "op": "eq", "value": "I10"}]}
    client.post(response["Location"], {"name": "Hypertension", "rules": json.dumps(changed)})
    segment.refresh_from_db()
    assert segment.name == "Hypertension" and segment.rules == changed
    assert "Hypertension" in text(client.get(reverse("contacts:segments")))
    assert client.post(reverse("contacts:segment_delete", args=[segment.pk])).status_code == 403
    staff_client(roles.ADMIN).post(reverse("contacts:segment_delete", args=[segment.pk]))
    assert not Segment.objects.exists()


def test_marketer_sees_phi_segment_read_only(staff_client, admin):
    segment = services.segment_create(name="Diabetics", rules=RULES, actor=admin)
    page = text(
        staff_client(roles.MARKETER).get(reverse("contacts:segment_edit", args=[segment.pk]))
    )
    assert "only the PHI Marketer and Admin roles" in page and 'id="save-segment"' not in page


# --- import pages ---------------------------------------------------------------------------


CSV = (
    "Email,First name,DOB,Marketing consent\n"
    "ann@example.org,Ann,1970-01-02,yes\n"
    "bad-email,Bo,1970-13-01,maybe\n"
)


def test_import_pages_walk_through_upload_check_and_import(
    staff_client, django_capture_on_commit_callbacks
):
    client = staff_client(roles.PHI_MARKETER)
    with django_capture_on_commit_callbacks(execute=True):
        upload = client.post(
            reverse("contacts:import"), {"file": SimpleUploadedFile("list.csv", CSV.encode())}
        )
        job = ImportJob.objects.get()
        assert upload["Location"] == reverse("contacts:import_job", args=[job.uuid])
        # The file is read by the import task, not in the upload request.
        assert job.status == ImportJobStatus.READING and job.headers == []
        reading = text(client.get(upload["Location"]))
        assert "Reading the file" in reading and 'hx-trigger="every 1s"' in reading
    page = text(client.get(upload["Location"]))
    assert "Map the columns" in page and '<option value="birth_date" selected>' in page
    data = {
        "col_0": "email",
        "col_1": "first_name",
        "col_2": "birth_date",
        "col_3": "consent.marketing",
        "consent_source": "paper",
        "evidence": "Box 4",
    }
    with django_capture_on_commit_callbacks(execute=True):
        client.post(upload["Location"], data)
    job.refresh_from_db()
    assert job.status == ImportJobStatus.PREVIEWED
    page = text(client.get(upload["Location"]))
    assert "Nothing has been written yet" in page
    assert "Email: not a valid address (missing @)." in page and "Date of birth: not a date" in page
    assert "<td>3</td>" in page and "bad-email" not in page
    refused = client.post(reverse("contacts:import_confirm", args=[job.uuid]))
    assert refused.status_code == 302 and not Contact.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("contacts:import_confirm", args=[job.uuid]), {"skip_invalid": "on"})
    job.refresh_from_db()
    assert job.status == ImportJobStatus.SUCCEEDED and job.created_count == 1
    page = text(client.get(upload["Location"]))
    assert "Imported" in page and "The uploaded file was deleted." in page
    status = client.get(reverse("contacts:import_status", args=[job.uuid]))
    assert status.status_code == 204 and status["HX-Refresh"] == "true"


def test_import_progress_partial_polls_while_active(
    staff_client, django_capture_on_commit_callbacks
):
    client = staff_client(roles.PHI_MARKETER)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("contacts:import"), {"file": SimpleUploadedFile("list.csv", CSV.encode())}
        )
    job = ImportJob.objects.get()
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJobStatus.RUNNING, total_rows=2)
    body = text(client.get(reverse("contacts:import_status", args=[job.uuid])))
    assert 'hx-trigger="every 1s"' in body and "<progress" in body


def test_marketer_mapping_phi_columns_gets_a_clear_error(
    staff_client, django_capture_on_commit_callbacks
):
    client = staff_client(roles.MARKETER)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("contacts:import"), {"file": SimpleUploadedFile("list.csv", CSV.encode())}
        )
    job = ImportJob.objects.get()
    page = text(client.get(reverse("contacts:import_job", args=[job.uuid])))
    assert "PHI role only" in page
    data = {
        "col_0": "email",
        "col_1": "first_name",
        "col_2": "birth_date",
        "col_3": "",
        "consent_source": "import",
    }
    response = client.post(reverse("contacts:import_job", args=[job.uuid]), data)
    assert response.status_code == 400
    assert "Columns &#x27;DOB&#x27; hold PHI; importing them needs the PHI Marketer role." in text(
        response
    )


def test_upload_errors_are_shown_next_to_the_file_field(staff_client):
    client = staff_client(roles.MARKETER)
    response = client.post(
        reverse("contacts:import"), {"file": SimpleUploadedFile("list.txt", b"email\n")}
    )
    assert 'id="id_file_error"' in text(response) and "Upload a .csv or .xlsx file" in text(
        response
    )


def test_cancel_from_the_page(staff_client, django_capture_on_commit_callbacks):
    client = staff_client(roles.MARKETER)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("contacts:import"), {"file": SimpleUploadedFile("list.csv", CSV.encode())}
        )
    job = ImportJob.objects.get()
    client.post(reverse("contacts:import_cancel", args=[job.uuid]))
    job.refresh_from_db()
    assert job.status == ImportJobStatus.CANCELLED and job.file_path == ""


def test_every_page_renders_for_an_admin(staff_client, admin, patient):
    client = staff_client(roles.ADMIN)
    contact_list = services.contact_list_create(name="L", actor=admin)
    field = services.custom_field_create(
        key="tier", label="Tier", kind="text", phi=False, actor=admin
    )
    segment = services.segment_create(name="S", rules=RULES, actor=admin)
    for url in [
        reverse("contacts:index"),
        reverse("contacts:create"),
        reverse("contacts:detail", args=[patient.uuid]),
        reverse("contacts:edit", args=[patient.uuid]),
        reverse("contacts:lists"),
        reverse("contacts:list_detail", args=[contact_list.pk]),
        reverse("contacts:fields"),
        reverse("contacts:field_edit", args=[field.pk]),
        reverse("contacts:segments"),
        reverse("contacts:segment_new"),
        reverse("contacts:segment_edit", args=[segment.pk]),
        reverse("contacts:import"),
        reverse("contacts:export"),
    ]:
        response = client.get(url)
        assert response.status_code == 200, url
        body = text(response)
        assert "<script>" not in body and " style=" not in body and "onclick" not in body, url
